import { createHash } from 'node:crypto';

/**
 * The hosted pages' one stylesheet, inline so the pages load nothing else; the CSP admits
 * it by its hash (CSP3 §8.3), so no other inline style can run. Readable on a phone (one
 * column, 16 px text), usable by keyboard (a visible focus ring on every control).
 */
export const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--accent:#0b5cad;--accent-fg:#fff;--bad:#a40e26}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#4493f8;--accent-fg:#0d1117;--bad:#ff7b72}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:30rem;margin:0 auto;padding:1.5rem 1rem 3rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.25rem 1.25rem 1.5rem}
h1{font-size:1.35rem;line-height:1.3;margin:.25rem 0 1rem}
h2{font-size:1rem;margin:1.25rem 0 .5rem}
p{margin:.5rem 0}
ul{margin:.25rem 0 .5rem;padding-left:1.25rem}
li{margin:.2rem 0}
.muted{color:var(--muted);font-size:.9rem}
.brand{font-size:.8rem;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);margin:0 0 .75rem}
.devices{list-style:none;padding:0}
.devices li{border:1px solid var(--line);border-radius:8px;padding:.5rem .75rem;margin:.4rem 0}
.devices .what{display:block;color:var(--muted);font-size:.85rem}
fieldset{border:0;padding:0;margin:0}
label.pick{display:flex;gap:.6rem;align-items:flex-start;border:1px solid var(--line);border-radius:8px;padding:.6rem .75rem;margin:.4rem 0;cursor:pointer}
label.pick input{margin-top:.3rem}
.field{display:block;margin:.6rem 0}
.field input{display:block;width:100%;font:inherit;padding:.55rem .6rem;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--fg)}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.5rem}
button{font:inherit;font-weight:600;min-height:44px;padding:.6rem 1.2rem;border-radius:8px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
button.primary{background:var(--accent);border-color:var(--accent);color:var(--accent-fg)}
button:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
a{color:var(--accent)}
.bad{color:var(--bad)}
`;

export const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;
