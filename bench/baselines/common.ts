/** Connection-level headers a proxy must not forward (RFC 9110 §7.6.1); host is set by the client library. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);

/** `--upstream URL`, the only argument a baseline takes. */
export function upstreamArg(): string {
  const i = process.argv.indexOf('--upstream');
  const url = i === -1 ? undefined : process.argv[i + 1];
  if (url === undefined) throw new Error('usage: node bench/baselines/<name>.ts --upstream http://127.0.0.1:PORT');
  return url;
}
