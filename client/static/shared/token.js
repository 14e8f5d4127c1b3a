/*
 * Virtual Windows: the device token of a kiosk or the token of a clerk, as given in the address once
 * (`/kiosk#token=...`, `/clerk#token=...`) and kept in the browser's local storage.
 */

const TOKEN_IN_HASH = /(^|&)token=/;

function storageGet(key) {
  try {
    return window.localStorage.getItem(key);
  } catch (err) {
    return null;
  }
}

function storageSet(key, value) {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch (err) {
    /* private mode or storage disabled: the token lives for this page only */
  }
}

/** Does the address carry a `#token=...` right now? */
export function tokenInAddress() {
  return TOKEN_IN_HASH.test(window.location.hash.replace(/^#/, ''));
}

/**
 * The device or clerk token. A `#token=...` in the address wins: it is kept in
 * localStorage under `storageKey` and removed from the address bar, so it does
 * not linger in the history or on screen. Returns null when there is none.
 */
export function takeToken(storageKey) {
  const hash = window.location.hash.replace(/^#/, '');
  let fromHash = null;
  if (hash) {
    const rest = [];
    for (const part of hash.split('&')) {
      if (part.startsWith('token=')) {
        try {
          fromHash = decodeURIComponent(part.slice('token='.length)).trim();
        } catch (err) {
          fromHash = part.slice('token='.length).trim();
        }
      } else if (part) {
        rest.push(part);
      }
    }
    if (fromHash !== null) {
      const url = window.location.pathname + window.location.search + (rest.length ? '#' + rest.join('&') : '');
      window.history.replaceState(window.history.state, '', url);
      if (fromHash) storageSet(storageKey, fromHash);
    }
  }
  return fromHash || storageGet(storageKey) || null;
}

/**
 * A token typed into the address bar of an open page (only the fragment
 * changes, so the browser does not reload): reload, and takeToken() picks it up.
 */
export function reloadOnNewToken() {
  window.addEventListener('hashchange', () => {
    if (tokenInAddress()) window.location.reload();
  });
}

export function forgetToken(storageKey) {
  storageSet(storageKey, null);
}
