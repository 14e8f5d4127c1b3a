/*
 * Virtual Windows: helpers shared by the kiosk and the clerk console.
 * Plain script (no modules, no build step); everything hangs off window.VW.
 */
(function () {
  'use strict';

  const VW = (window.VW = window.VW || {});

  /** The JSON the server rendered into <script id="vw-data" type="application/json"> (or another id). */
  VW.readData = function readData(id) {
    const el = document.getElementById(id || 'vw-data');
    if (!el) return {};
    try {
      const data = JSON.parse(el.textContent || '{}');
      return data && typeof data === 'object' ? data : {};
    } catch (err) {
      console.error(`vw: cannot parse #${id || 'vw-data'}`, err);
      return {};
    }
  };

  /**
   * Texts from the gettext catalogs (client/locale/<lang>/LC_MESSAGES/<domain>.po), which the server
   * renders into the page as JSON: {lang: {name, dir, messages}}. A message is keyed by its msgid (the
   * English source text; "context\u0004msgid" with a context) and is a text, or its plural forms keyed by
   * Intl.PluralRules category. A text without a translation shows its msgid. `{name}` placeholders are
   * filled from `params`. `currentLang()` names the language when a call gives none.
   *
   * The functions are found by `pybabel extract` (keywords t, tn:1,2, tp:1c,2 and N_ in babel-*.cfg),
   * so their first arguments must be string literals; N_ marks a text that is translated later.
   */
  VW.translator = function translator(catalogs, currentLang) {
    function format(text, params) {
      if (!params) return text;
      return text.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
    }
    function lookup(key, lang) {
      const catalog = catalogs[lang || currentLang()];
      const messages = catalog && catalog.messages;
      return messages && Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : undefined;
    }
    /** gettext */
    function t(msgid, params, lang) {
      if (typeof msgid !== 'string') return '';
      const value = lookup(msgid, lang);
      return format(typeof value === 'string' ? value : msgid, params);
    }
    /** pgettext: the same English text with another meaning (and translation) */
    function tp(context, msgid, params, lang) {
      const value = lookup(`${context}\u0004${msgid}`, lang);
      return format(typeof value === 'string' ? value : msgid, params);
    }
    /** ngettext: the form for the count `n` (also the placeholder {n}) */
    function tn(singular, plural, n, params, lang) {
      const language = lang || currentLang();
      const value = lookup(singular, language);
      let text = n === 1 ? singular : plural;
      if (value && typeof value === 'object') {
        let category = 'other';
        try {
          category = new Intl.PluralRules(language).select(n);
        } catch (err) {
          /* an unknown language: "other" */
        }
        text = value[category] || value.other || text;
      }
      return format(text, Object.assign({ n }, params));
    }
    return { t, tp, tn, N_: (msgid) => msgid };
  };

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

  /**
   * The device or clerk token. A `#token=...` in the address wins: it is kept in
   * localStorage under `storageKey` and removed from the address bar, so it does
   * not linger in the history or on screen. Returns null when there is none.
   */
  VW.takeToken = function takeToken(storageKey) {
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
  };

  /**
   * A token typed into the address bar of an open page (only the fragment
   * changes, so the browser does not reload): reload, and takeToken() picks it up.
   */
  VW.reloadOnNewToken = function reloadOnNewToken() {
    window.addEventListener('hashchange', () => {
      if (/(^|&)token=/.test(window.location.hash.replace(/^#/, ''))) window.location.reload();
    });
  };

  VW.forgetToken = function forgetToken(storageKey) {
    storageSet(storageKey, null);
  };

  /**
   * Emit `event` with an acknowledgement (the protocol requires one for every
   * client event) and resolve to the server's answer: `{ok: true, ...}` or
   * `{ok: false, error: {code, message}}`. A missing answer becomes the error
   * code "timeout"; never rejects.
   */
  VW.send = function send(socket, event, payload, timeoutMs) {
    return new Promise((resolve) => {
      if (!socket) {
        resolve({ ok: false, error: { code: 'offline', message: 'not connected' } });
        return;
      }
      socket.timeout(timeoutMs || 15000).emit(event, payload, (err, answer) => {
        if (err) {
          resolve({ ok: false, error: { code: 'timeout', message: 'the server did not answer in time' } });
        } else if (answer && typeof answer === 'object' && answer.ok === true) {
          resolve(answer);
        } else {
          const error = (answer && answer.error) || { code: 'internal_error', message: 'malformed answer' };
          resolve({ ok: false, error: { code: String(error.code || 'internal_error'), message: String(error.message || '') } });
        }
      });
    });
  };

  /**
   * Was this connect_error the server refusing the token? A refusal from the
   * server (as opposed to a network error) leaves the socket inactive: Socket.IO
   * does not retry it by itself.
   */
  VW.isUnauthorized = function isUnauthorized(err) {
    if (!err) return false;
    const data = err.data;
    if (data && typeof data === 'object' && data.code === 'unauthorized') return true;
    return /unauthori[sz]ed/i.test(String(err.message || ''));
  };

  VW.stopStream = function stopStream(stream) {
    if (!stream) return;
    for (const track of stream.getTracks()) {
      try {
        track.stop();
      } catch (err) {
        /* already stopped */
      }
    }
  };

  /** Show a MediaStream in a <video>; null clears it. */
  VW.attachStream = function attachStream(video, stream) {
    if (!video) return;
    if (video.srcObject !== stream) video.srcObject = stream || null;
    if (stream) {
      const playing = video.play();
      if (playing && typeof playing.catch === 'function') {
        playing.catch((err) => {
          // AbortError: a newer srcObject replaced this one before it played
          if (!err || err.name !== 'AbortError') console.warn('vw: video.play() refused', err && err.name);
        });
      }
    }
  };

  /** 75 -> "1:15", 3725 -> "1:02:05". */
  VW.formatDuration = function formatDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const r = String(s % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
  };

  /** A name from a {zh, en, ar} map in `lang`, else English, else the fallback. */
  VW.pickName = function pickName(names, lang, fallback) {
    if (names && typeof names === 'object') return names[lang] || names.en || fallback;
    return fallback;
  };

  /** Replace the children of `el` with a text node. */
  VW.setText = function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  };

  VW.show = function show(el, visible) {
    if (el) el.hidden = !visible;
  };
})();
