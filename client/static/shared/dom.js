/*
 * Virtual Windows: small DOM helpers shared by the pages (no framework, no build step).
 */

/** The JSON the server rendered into <script id="vw-data" type="application/json"> (or another id). */
export function readData(id) {
  const el = document.getElementById(id || 'vw-data');
  if (!el) return {};
  try {
    const data = JSON.parse(el.textContent || '{}');
    return data && typeof data === 'object' ? data : {};
  } catch (err) {
    console.error(`vw: cannot parse #${id || 'vw-data'}`, err);
    return {};
  }
}

/** Replace the children of `el` with a text node (left alone when it already shows `text`). */
export function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

/** A DOM element: props are attributes, except `dataset`, `text` and non-string properties (`required: true`). */
export function make(tag, props, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = value;
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children || []) if (child) node.appendChild(child);
  return node;
}
