import type { YamlNode } from './yaml-tree.ts';
import type { YamlWalker } from './yaml-walker.ts';

/**
 * The policy's `connect:` section: how the hosted Connect page learns a user's devices.
 * Without `deviceStep` the page is consent over the devices the backend already has for
 * the link's referenceId (the shipped texture.yaml). With it, the page first sends the
 * browser to that backend page (a manufacturer sign-in), which links devices to the
 * referenceId and sends the browser back to `{returnUrl}` with `state={state}`; Keygate
 * then asks the backend, server to server, which devices the referenceId has.
 *
 * With `deviceStepConfirm` as well, the step links nothing by itself: the backend sends the
 * browser back with a one-time `code` too, and links the devices only when Keygate, having
 * checked that the return came to the browser the link is bound to, posts that code to this
 * backend path (OAuth's authorization code, RFC 6749 §4.1). Without it a step URL handed to
 * someone else links their devices to the link's referenceId (docs/connect.md).
 */
export interface ConnectSettings {
  /** URL template of the backend's device step, or null (consent only). */
  readonly deviceStep: string | null;
  /** The list route Keygate reads a referenceId's devices from, with `referenceId=` as the filter. */
  readonly devicesPath: string;
  /** Backend path Keygate posts `{referenceId, code, returnUrl}` to after the step's return, or null. */
  readonly deviceStepConfirm: string | null;
}

export const DEFAULT_CONNECT: ConnectSettings = Object.freeze({ deviceStep: null, devicesPath: '/v1/devices', deviceStepConfirm: null });

/** Placeholders of the device step's URL; each is replaced URL-encoded. */
export const DEVICE_STEP_FIELDS = ['referenceId', 'returnUrl', 'state', 'manufacturers'] as const;
const REQUIRED = ['referenceId', 'returnUrl', 'state'] as const;

export interface ConnectDraft {
  readonly node: YamlNode;
  readonly w: YamlWalker;
  readonly settings: ConnectSettings;
}

function checkTemplate(w: YamlWalker, node: YamlNode, text: string): boolean {
  const names = [...text.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]!);
  for (const n of names) {
    if (!(DEVICE_STEP_FIELDS as readonly string[]).includes(n)) {
      w.fail(node, `connect.deviceStep: unknown placeholder {${n}} (known: ${DEVICE_STEP_FIELDS.map((f) => `{${f}}`).join(', ')})`);
      return false;
    }
  }
  for (const n of REQUIRED) {
    if (!names.includes(n)) {
      w.fail(node, `connect.deviceStep must carry {${n}} (the backend needs the referenceId, and sends the browser back to {returnUrl} with state={state})`);
      return false;
    }
  }
  let url: URL;
  try {
    url = new URL(text.replace(/\{[^{}]*\}/g, 'x'));
  } catch {
    w.fail(node, 'connect.deviceStep must be an absolute http(s) URL template');
    return false;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    w.fail(node, 'connect.deviceStep must be an http(s) URL');
    return false;
  }
  // The backend's host is the policy's to name, never a value of a link's.
  if (/[{}]/.test(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(text)?.[1] ?? '{')) {
    w.fail(node, 'connect.deviceStep: placeholders may stand in its path or query only');
    return false;
  }
  return true;
}

export function connectDraft(w: YamlWalker, node: YamlNode | null, keyNode: YamlNode): ConnectDraft | null {
  let deviceStep: string | null = null;
  let devicesPath = DEFAULT_CONNECT.devicesPath;
  let deviceStepConfirm: string | null = null;
  let confirmNode: YamlNode | null = null;
  for (const e of w.entries(node, 'connect', ['deviceStep', 'devices', 'deviceStepConfirm'])) {
    const value = w.string(e.value, `connect.${e.key}`, e.keyNode);
    if (value === undefined) continue;
    if (e.key === 'deviceStep') {
      if (checkTemplate(w, e.value!, value)) deviceStep = value;
    } else if (!isBackendPath(value)) {
      w.fail(e.value, `connect.${e.key} must be a path such as ${e.key === 'devices' ? '/v1/devices' : '/connect/confirm'}`);
    } else if (e.key === 'devices') devicesPath = value;
    else {
      deviceStepConfirm = value;
      confirmNode = e.keyNode;
    }
  }
  if (deviceStepConfirm !== null && deviceStep === null && confirmNode !== null) w.fail(confirmNode, 'connect.deviceStepConfirm needs a connect.deviceStep (it confirms that step)');
  return { node: keyNode, w, settings: Object.freeze({ deviceStep, devicesPath, deviceStepConfirm }) };
}

/** A path on the backend, with nothing that could name another host or climb out of it. */
function isBackendPath(value: string): boolean {
  return /^\/[A-Za-z0-9._~\-/]*$/.test(value) && !value.includes('//') && !/(^|\/)\.\.?(\/|$)/.test(value);
}

/** The URL of the device step for one link session. */
export function deviceStepUrl(template: string, values: Readonly<Record<(typeof DEVICE_STEP_FIELDS)[number], string>>): string {
  return template.replace(/\{([^{}]*)\}/g, (_, name: (typeof DEVICE_STEP_FIELDS)[number]) => encodeURIComponent(values[name]));
}

/**
 * What an operator should hear about a policy's connect section that is valid but open to
 * an attack: a device step without a confirmation links devices for whoever comes back with
 * its state (docs/connect.md, "The device step handed to someone else"). Empty when none.
 */
export function connectWarnings(settings: ConnectSettings): string[] {
  if (settings.deviceStep === null || settings.deviceStepConfirm !== null) return [];
  return [
    'connect.deviceStep has no connect.deviceStepConfirm: a step URL handed to someone else links their devices for whoever started the link (docs/connect.md, "The device step handed to someone else")',
  ];
}
