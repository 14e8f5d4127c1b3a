/*
 * Virtual Windows kiosk: the visitor's touch screen.
 *
 * Speaks docs/protocol.md on the Socket.IO namespace /kiosk. The kiosk is the
 * offerer of each call. Texts live in kiosk-i18n.js (zh, en, ar).
 *
 * Phases (shown in [data-testid=state] and <body data-state>):
 *   setup, unauthorized, replaced, connecting      no usable connection
 *   idle                                           language + service fields
 *   camera                                         waiting for getUserMedia
 *   error                                          a message and a Back button
 *   requesting, queue, ringing                     the wait screen
 *   call                                           talking to a clerk
 *   thanks                                         after the call, ~8 s
 */
(function () {
  'use strict';

  const VW = window.VW;
  const STRINGS = VW.KIOSK_STRINGS;
  const LANGUAGE_NAMES = VW.KIOSK_LANGUAGE_NAMES;

  const TOKEN_KEY = 'vw.kioskToken';
  const IDLE_TIMEOUT_MS = 60 * 1000; // error-like screens go back to the start after this long untouched
  const THANKS_MS = 8 * 1000;
  const ACK_TIMEOUT_MS = 15 * 1000;
  const RETRY_REFUSED_MS = 10 * 1000; // a refusal other than "unauthorized": try again after this
  const TIMEOUT_PHASES = new Set(['camera', 'error']);
  const SCREEN_OF_PHASE = { requesting: 'wait', queue: 'wait', ringing: 'wait' };

  const ICONS = {
    shop: [
      'M3 9 5 4h14l2 5',
      'M3 9h18v1.5a3 3 0 0 1-6 0 3 3 0 0 1-6 0 3 3 0 0 1-6 0z',
      'M5 13v7h14v-7',
      'M10 20v-4h4v4',
    ],
    receipt: ['M6 3h12v18l-3-2-3 2-3-2-3 2z', 'M9 8h6', 'M9 12h6', 'M9 16h3'],
    people: [
      'M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z',
      'M2.5 20a6.5 6.5 0 0 1 13 0',
      'M16 4.3a3.2 3.2 0 0 1 0 6.4',
      'M18 14a6 6 0 0 1 3.5 6',
    ],
    home: ['M3 11.5 12 4l9 7.5', 'M5.5 10v10h13V10', 'M10 20v-6h4v6'],
    other: ['M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z', 'M12 7.5v6', 'M12 16.5v.5'],
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    html: document.documentElement,
    state: $('kiosk-state'),
    status: $('kiosk-status'),
    banner: $('banner'),
    placeName: $('place-name'),
    placeRegion: $('place-region'),
    languages: $('languages'),
    fields: $('fields'),
    errorMessage: $('error-message'),
    errorDetail: $('error-detail'),
    waitField: $('wait-field'),
    waitTitle: $('wait-title'),
    queueNote: $('queue-note'),
    queueBox: $('queue-box'),
    ringingBox: $('ringing-box'),
    queuePosition: $('queue-position'),
    queuePositionText: $('queue-position-text'),
    estimatedWait: $('estimated-wait'),
    previewVideo: $('preview-video'),
    remoteVideo: $('remote-video'),
    localVideo: $('local-video'),
    peerName: $('peer-name'),
    peerCenter: $('peer-center'),
    callField: $('call-field'),
    callNote: $('call-note'),
    thanksText: $('thanks-text'),
  };

  const initial = VW.readData();
  const htmlLang = (el.html.getAttribute('lang') || 'en').split('-')[0];

  const state = {
    token: null,
    socket: null,
    fields: Array.isArray(initial.fields) ? initial.fields : [],
    languages: cleanLanguages(initial.languages),
    defaultLang: 'en',
    lang: 'en',
    kiosk: null,
    phase: 'connecting',
    call: null, // the visitor's call, from the tap on a field to its end
    error: null, // {key, detail}
    thanks: null, // {interrupted}
    lastTouch: Date.now(),
    thanksTimer: null,
    strays: new Set(), // call ids we hung up because nobody on this page owns them
  };
  state.defaultLang = state.languages.includes(htmlLang) ? htmlLang : state.languages[0];
  state.lang = state.defaultLang;

  // ------------------------------------------------------------------ text

  function cleanLanguages(list) {
    const known = Array.isArray(list) ? list.filter((l) => typeof l === 'string' && STRINGS[l]) : [];
    return known.length ? known : ['zh', 'en', 'ar'];
  }

  /** The text for `key` in `lang` (default: the visitor's), with {n}/{m} filled in. */
  function t(key, params, lang) {
    const language = lang || state.lang;
    let value = (STRINGS[language] || {})[key];
    if (value === undefined) value = STRINGS.en[key];
    if (value === undefined) return key;
    if (typeof value === 'object') {
      const count = params && typeof params.n === 'number' ? params.n : params && params.m;
      let category = 'other';
      try {
        category = new Intl.PluralRules(language).select(count);
      } catch (err) {
        /* old browser: use "other" */
      }
      value = value[category] || value.other;
    }
    if (params) {
      value = value.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
    }
    return value;
  }

  function fieldById(id) {
    return state.fields.find((f) => f && f.id === id) || null;
  }

  function fieldName(id) {
    const f = fieldById(id);
    return f ? VW.pickName(f.names, state.lang, f.id) : id || '';
  }

  // ------------------------------------------------------------------ building the page

  function svgIcon(name) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('class', 'vw-field-icon');
    for (const d of ICONS[name] || ICONS.other) {
      const path = document.createElementNS(ns, 'path');
      path.setAttribute('d', d);
      svg.appendChild(path);
    }
    return svg;
  }

  function buildFields() {
    el.fields.replaceChildren();
    for (const f of state.fields) {
      if (!f || typeof f.id !== 'string') continue;
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'vw-field';
      button.dataset.field = f.id;
      button.dataset.testid = 'field-' + f.id;
      button.appendChild(svgIcon(f.icon));
      const name = document.createElement('span');
      name.className = 'vw-field-name';
      button.appendChild(name);
      el.fields.appendChild(button);
    }
  }

  function buildLanguages() {
    el.languages.replaceChildren();
    for (const lang of state.languages) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'vw-lang';
      button.lang = lang;
      button.dir = VW.RTL_LANGUAGES.includes(lang) ? 'rtl' : 'ltr';
      button.dataset.lang = lang;
      button.dataset.testid = 'lang-' + lang;
      button.textContent = LANGUAGE_NAMES[lang] || lang;
      el.languages.appendChild(button);
    }
  }

  /** Texts shown in every language at once (before anyone picked one). */
  function renderMultilang() {
    for (const box of document.querySelectorAll('[data-multilang]')) {
      const keys = box.dataset.multilang.split(/\s+/).filter(Boolean);
      box.replaceChildren();
      for (const lang of state.languages) {
        const block = document.createElement('div');
        block.className = 'vw-multilang-block';
        block.lang = lang;
        block.dir = VW.RTL_LANGUAGES.includes(lang) ? 'rtl' : 'ltr';
        keys.forEach((key, i) => {
          const p = document.createElement('p');
          p.className = i === 0 ? 'vw-big-text' : 'vw-sub-text';
          p.textContent = t(key, null, lang);
          block.appendChild(p);
        });
        box.appendChild(block);
      }
    }
  }

  // ------------------------------------------------------------------ rendering

  function setLanguage(lang) {
    if (!state.languages.includes(lang)) return;
    state.lang = lang;
    render();
  }

  function render() {
    const lang = state.lang;
    el.html.lang = lang;
    el.html.dir = VW.RTL_LANGUAGES.includes(lang) ? 'rtl' : 'ltr';

    // screens
    const screen = SCREEN_OF_PHASE[state.phase] || state.phase;
    for (const section of document.querySelectorAll('[data-screen]')) {
      section.hidden = section.dataset.screen !== screen;
    }
    VW.setText(el.state, state.phase);
    document.body.dataset.state = state.phase;

    // static texts
    for (const node of document.querySelectorAll('[data-i18n]')) {
      VW.setText(node, t(node.dataset.i18n));
    }
    for (const button of el.languages.querySelectorAll('[data-lang]')) {
      button.setAttribute('aria-pressed', String(button.dataset.lang === lang));
    }
    for (const button of el.fields.querySelectorAll('[data-field]')) {
      VW.setText(button.querySelector('.vw-field-name'), fieldName(button.dataset.field));
    }

    // the place
    const kiosk = state.kiosk;
    VW.setText(el.placeName, kiosk ? kiosk.name || '' : '');
    VW.setText(el.placeRegion, kiosk ? VW.pickName(kiosk.region_names, lang, kiosk.region || '') : '');

    renderWait();
    renderCall();
    VW.setText(el.errorMessage, state.error ? t(state.error.key) : '');
    VW.setText(el.errorDetail, state.error && state.error.detail ? state.error.detail : '');
    VW.setText(el.thanksText, state.thanks && state.thanks.interrupted ? t('interrupted') : t('thanksText'));
    VW.setText(el.status, statusText());
  }

  function renderWait() {
    const call = state.call;
    if (!call) return;
    const ringing = state.phase === 'ringing';
    VW.setText(el.waitField, fieldName(call.field));
    VW.setText(el.waitTitle, ringing ? t('ringing') : t('queueTitle'));
    el.queueNote.hidden = !call.note;
    VW.setText(el.queueNote, call.note ? t(call.note) : '');
    el.queueBox.hidden = ringing;
    el.ringingBox.hidden = !ringing;

    const position = call.position;
    VW.setText(el.queuePosition, typeof position === 'number' ? String(position) : '…');
    el.queuePosition.dataset.position = typeof position === 'number' ? String(position) : '';
    let positionText = '';
    if (position === 1) positionText = t('positionNext');
    else if (typeof position === 'number' && position > 1) positionText = t('positionAhead', { m: position - 1 });
    VW.setText(el.queuePositionText, positionText);

    const wait = call.wait; // undefined: not known yet; null: no clerk online who could take it
    let waitText = '…';
    if (wait === null) waitText = t('waitEstimating');
    else if (typeof wait === 'number') waitText = wait < 60 ? t('waitLessMinute') : t('waitMinutes', { n: Math.round(wait / 60) });
    VW.setText(el.estimatedWait, waitText);
    el.estimatedWait.dataset.seconds = typeof wait === 'number' ? String(Math.round(wait)) : '';
  }

  function renderCall() {
    const call = state.call;
    if (!call || state.phase !== 'call') return;
    const peer = call.peer || {};
    VW.setText(el.peerName, peer.name || '');
    VW.setText(el.peerCenter, peer.center || '');
    VW.setText(el.callField, fieldName(call.field));
    el.callNote.hidden = !call.mediaNote;
    VW.setText(el.callNote, call.mediaNote ? t(call.mediaNote) : '');
  }

  function statusText() {
    switch (state.phase) {
      case 'setup': return t('notSetUp');
      case 'unauthorized': return t('unauthorized');
      case 'replaced': return t('replaced');
      case 'connecting': return t('connecting');
      case 'idle': return t('choose');
      case 'camera': return t('cameraStarting');
      case 'error': return state.error ? t(state.error.key) : '';
      case 'requesting':
      case 'queue': return [el.waitTitle.textContent, el.queuePositionText.textContent].filter(Boolean).join('. ');
      case 'ringing': return t('ringing');
      case 'call': return state.call && state.call.peer ? `${t('talkingTo')} ${state.call.peer.name || ''}` : '';
      case 'thanks': return t('thanks');
      default: return '';
    }
  }

  function setPhase(phase) {
    state.phase = phase;
    state.lastTouch = Date.now();
    render();
  }

  function setBanner(visible) {
    el.banner.hidden = !visible || ['setup', 'unauthorized', 'replaced'].includes(state.phase);
  }

  // ------------------------------------------------------------------ navigation

  /** Back to the start screen; `fresh` also resets the language for the next visitor. */
  function goIdle(fresh) {
    endLocalCall();
    clearTimeout(state.thanksTimer);
    state.thanksTimer = null;
    state.error = null;
    state.thanks = null;
    if (fresh) state.lang = state.defaultLang;
    // before the first welcome there is nothing to show yet; later a lost connection only shows the banner
    setPhase(state.kiosk ? 'idle' : 'connecting');
  }

  function showError(key, detail) {
    endLocalCall();
    state.error = { key, detail: detail || '' };
    setPhase('error');
  }

  function showThanks(interrupted) {
    endLocalCall();
    state.thanks = { interrupted: !!interrupted };
    clearTimeout(state.thanksTimer);
    state.thanksTimer = setTimeout(() => {
      if (state.phase === 'thanks') goIdle(true);
    }, THANKS_MS);
    setPhase('thanks');
  }

  /** Forget the call on this side: peer connection, camera, videos. Sends nothing. */
  function endLocalCall() {
    const call = state.call;
    state.call = null;
    if (!call) return;
    call.over = true;
    if (call.rtc) call.rtc.close();
    VW.stopStream(call.stream);
    VW.attachStream(el.previewVideo, null);
    VW.attachStream(el.localVideo, null);
    VW.attachStream(el.remoteVideo, null);
  }

  function closePeer(call) {
    if (call.rtc) call.rtc.close();
    call.rtc = null;
    call.peer = null;
    call.mediaNote = null;
    VW.attachStream(el.remoteVideo, null);
    VW.attachStream(el.localVideo, null);
    VW.attachStream(el.previewVideo, call.stream);
  }

  // ------------------------------------------------------------------ the visitor's actions

  function cameraErrorKey(err) {
    const name = err && err.name;
    if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') return 'cameraDenied';
    if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError' || name === 'NotSupportedError') {
      return 'cameraMissing';
    }
    return 'cameraFailed';
  }

  function ackErrorKey(code) {
    switch (code) {
      case 'field_not_served':
      case 'unknown_field':
        return 'errFieldNotServed';
      case 'already_in_call':
        return 'errAlreadyInCall';
      case 'timeout':
        return 'errTimeout';
      case 'offline':
        return 'errOffline';
      default:
        return 'errGeneric';
    }
  }

  async function chooseField(fieldId) {
    if (state.phase !== 'idle' || state.call) return;
    if (!state.socket || !state.socket.connected) {
      showError('errOffline');
      return;
    }
    const call = {
      id: null,
      field: fieldId,
      language: state.lang,
      stream: null,
      rtc: null,
      peer: null,
      position: undefined,
      wait: undefined,
      note: null,
      mediaNote: null,
      mediaReported: false,
      over: false,
    };
    state.call = call;
    setPhase('camera');

    let stream;
    try {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        const err = new Error('navigator.mediaDevices is not available (is the page served over https?)');
        err.name = 'NotSupportedError';
        throw err;
      }
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    } catch (err) {
      if (state.call !== call) return; // the visitor left meanwhile
      console.warn('vw: getUserMedia failed', err);
      showError(cameraErrorKey(err), err && err.name ? `${err.name}: ${err.message || ''}` : '');
      return;
    }
    if (state.call !== call) {
      VW.stopStream(stream);
      return;
    }
    call.stream = stream;
    VW.attachStream(el.previewVideo, stream);
    setPhase('requesting');

    const answer = await VW.send(state.socket, 'request_call', { field: fieldId, language: call.language }, ACK_TIMEOUT_MS);
    if (state.call !== call) {
      // cancelled (or timed out) before the server answered: withdraw the call it made
      if (answer.ok && answer.call_id) withdraw(answer.call_id);
      return;
    }
    if (!answer.ok) {
      showError(ackErrorKey(answer.error.code), answer.error.message);
      return;
    }
    call.id = call.id || answer.call_id;
    if (state.phase === 'requesting') {
      // events for this call may have come before this answer; only fill in what they did not
      if (call.position === undefined) call.position = answer.position;
      if (call.wait === undefined) call.wait = answer.estimated_wait_s;
      setPhase(answer.state === 'ringing' ? 'ringing' : 'queue');
    }
  }

  async function cancel() {
    const call = state.call;
    if (!call || !['camera', 'requesting', 'queue', 'ringing'].includes(state.phase)) return;
    goIdle(false);
    if (call.id) withdraw(call.id);
    // no id yet: chooseField() withdraws the call when the server's answer comes
  }

  /** Cancel a call that is waiting or ringing; one that was answered meanwhile is hung up. */
  async function withdraw(callId) {
    const answer = await VW.send(state.socket, 'cancel_call', { call_id: callId }, ACK_TIMEOUT_MS);
    if (!answer.ok && answer.error.code === 'wrong_state') {
      await VW.send(state.socket, 'hangup', { call_id: callId }, ACK_TIMEOUT_MS);
    }
  }

  function hangup() {
    const call = state.call;
    if (!call || state.phase !== 'call') return;
    showThanks(false);
    if (call.id) VW.send(state.socket, 'hangup', { call_id: call.id }, ACK_TIMEOUT_MS);
  }

  // ------------------------------------------------------------------ server events

  /** The visitor's call that `msg` is about, or null. */
  function ownCall(msg) {
    const call = state.call;
    if (!call || !msg || typeof msg.call_id !== 'string') return null;
    if (call.id === msg.call_id) return call;
    if (call.id === null && state.phase === 'requesting') {
      // the server's events can overtake the answer to request_call
      call.id = msg.call_id;
      return call;
    }
    return null;
  }

  /** Events about a call nobody here owns (left behind by a cancel or a reload): end it. */
  function stray(msg) {
    if (!msg || typeof msg.call_id !== 'string' || state.strays.has(msg.call_id)) return;
    if (state.call && state.call.id === msg.call_id) return;
    state.strays.add(msg.call_id);
    VW.send(state.socket, 'hangup', { call_id: msg.call_id }, ACK_TIMEOUT_MS);
  }

  function onWelcome(msg) {
    msg = msg || {};
    state.kiosk = msg.kiosk || null;
    if (Array.isArray(msg.fields) && msg.fields.length) state.fields = msg.fields;
    if (Array.isArray(msg.languages) && msg.languages.length) {
      state.languages = cleanLanguages(msg.languages);
      if (!state.languages.includes(state.defaultLang)) state.defaultLang = state.languages[0];
      if (!state.languages.includes(state.lang)) state.lang = state.defaultLang;
    }
    buildLanguages();
    buildFields();
    renderMultilang();
    setBanner(false);

    const serverCall = msg.call && typeof msg.call === 'object' ? msg.call : null;
    const serverCallId = serverCall ? serverCall.call_id || serverCall.id : null;
    const call = state.call;
    if (call && ['requesting', 'queue', 'ringing', 'call'].includes(state.phase)) {
      // A new connection: the server ended whatever this page was doing (protocol:
      // a kiosk that disconnects ends its call), unless it says otherwise.
      if (serverCallId && serverCallId === call.id && state.phase !== 'call') {
        render();
        return;
      }
      showError('errConnectionLost');
    } else if (['connecting', 'replaced', 'unauthorized'].includes(state.phase)) {
      goIdle(false);
    } else {
      render();
    }
    if (serverCallId && (!state.call || state.call.id !== serverCallId)) stray({ call_id: serverCallId });
  }

  function onQueued(msg) {
    const call = ownCall(msg);
    if (!call) return stray(msg);
    if (call.rtc) {
      // back in the queue while talking: the clerk's connection dropped
      closePeer(call);
      call.note = 'clerkDisconnected';
    } else if (msg.reason === 'clerk_disconnected') {
      call.note = 'clerkDisconnected';
    }
    call.position = typeof msg.position === 'number' ? msg.position : call.position;
    call.wait = msg.estimated_wait_s === null || typeof msg.estimated_wait_s === 'number' ? msg.estimated_wait_s : call.wait;
    setPhase('queue');
  }

  function onRinging(msg) {
    const call = ownCall(msg);
    if (!call) return stray(msg);
    if (call.rtc) {
      // the clerk dropped and the call went straight to another clerk
      closePeer(call);
      call.note = 'clerkDisconnected';
    }
    setPhase('ringing');
  }

  function onMatched(msg) {
    const call = ownCall(msg);
    if (!call) return stray(msg);
    if (call.rtc) closePeer(call);
    call.peer = msg.peer || {};
    call.note = null;
    call.mediaNote = 'connectingMedia';
    call.mediaReported = false;
    const callId = call.id;
    const rtc = new VW.CallPeer({
      iceServers: msg.ice_servers,
      stream: call.stream,
      onSignal: (payload) => {
        VW.send(state.socket, 'signal', Object.assign({ call_id: callId }, payload), ACK_TIMEOUT_MS).then((answer) => {
          if (!answer.ok) console.warn('vw: signal refused', answer.error);
        });
      },
      onRemoteStream: (stream) => {
        if (call.rtc === rtc) VW.attachStream(el.remoteVideo, stream);
      },
      onIceState: (ice) => onIceState(call, rtc, ice),
    });
    call.rtc = rtc;
    VW.attachStream(el.previewVideo, null);
    VW.attachStream(el.localVideo, call.stream);
    setPhase('call');
    rtc.offer().catch(() => {
      if (call.rtc === rtc) {
        call.mediaNote = 'mediaProblem';
        render();
      }
    });
  }

  function onIceState(call, rtc, ice) {
    if (call.rtc !== rtc || state.call !== call) return;
    if (ice === 'connected' || ice === 'completed') {
      call.mediaNote = null;
      if (!call.mediaReported) {
        call.mediaReported = true;
        VW.send(state.socket, 'media_connected', { call_id: call.id }, ACK_TIMEOUT_MS);
      }
    } else if (ice === 'disconnected' || ice === 'failed') {
      call.mediaNote = 'mediaProblem';
    } else if (ice === 'checking' && !call.mediaReported) {
      call.mediaNote = 'connectingMedia';
    }
    render();
  }

  function onSignal(msg) {
    const call = state.call;
    if (!call || !msg || call.id !== msg.call_id || !call.rtc) return;
    call.rtc.handleSignal(msg);
  }

  function onCallEnded(msg) {
    const call = state.call;
    if (!call || !msg || call.id !== msg.call_id) return;
    if (state.phase === 'call') {
      showThanks(msg.reason !== 'hangup');
    } else if (msg.by === 'visitor' && msg.reason === 'cancelled') {
      goIdle(false);
    } else {
      // ended by the system before a clerk answered
      showError('errGeneric', msg.reason ? `${msg.reason} (${msg.by || ''})` : '');
    }
  }

  // ------------------------------------------------------------------ connection

  function connect() {
    const socket = window.io('/kiosk', { auth: { token: state.token } });
    state.socket = socket;

    socket.on('connect', () => setBanner(false));
    socket.on('connect_error', (err) => {
      if (socket.active) {
        setBanner(true); // a network problem: Socket.IO retries by itself
        return;
      }
      if (VW.isUnauthorized(err)) {
        endLocalCall();
        setPhase('unauthorized');
        setBanner(false);
        return;
      }
      // refused for another reason: try again a little later
      console.warn('vw: connection refused', err && err.message, err && err.data);
      setBanner(true);
      setTimeout(() => {
        if (!socket.connected && !socket.active) socket.connect();
      }, RETRY_REFUSED_MS);
    });
    socket.on('disconnect', (reason) => {
      if (reason === 'io server disconnect') {
        // the server closed this connection: the same kiosk connected elsewhere
        endLocalCall();
        setPhase('replaced');
        setBanner(false);
      } else if (reason !== 'io client disconnect') {
        setBanner(true);
      }
    });

    socket.on('welcome', onWelcome);
    socket.on('queued', onQueued);
    socket.on('ringing', onRinging);
    socket.on('matched', onMatched);
    socket.on('signal', onSignal);
    socket.on('call_ended', onCallEnded);
  }

  // ------------------------------------------------------------------ wiring

  function onClick(ev) {
    const target = ev.target instanceof Element ? ev.target : null;
    if (!target) return;
    const fieldButton = target.closest('[data-field]');
    if (fieldButton && el.fields.contains(fieldButton)) {
      chooseField(fieldButton.dataset.field);
      return;
    }
    const langButton = target.closest('[data-lang]');
    if (langButton && el.languages.contains(langButton)) {
      setLanguage(langButton.dataset.lang);
      return;
    }
    const button = target.closest('button');
    switch (button && button.id) {
      case 'cancel':
      case 'camera-back':
        cancel();
        break;
      case 'back':
        goIdle(false);
        break;
      case 'hangup':
        hangup();
        break;
      case 'reconnect':
        setPhase('connecting');
        if (state.socket) state.socket.connect();
        break;
      default:
        if (state.phase === 'thanks' && target.closest('[data-screen="thanks"]')) goIdle(true);
    }
  }

  function touched() {
    state.lastTouch = Date.now();
  }

  function tick() {
    const idleFor = Date.now() - state.lastTouch;
    if (idleFor < IDLE_TIMEOUT_MS) return;
    if (TIMEOUT_PHASES.has(state.phase)) {
      goIdle(true);
    } else if (state.phase === 'idle' && state.lang !== state.defaultLang) {
      state.lastTouch = Date.now();
      setLanguage(state.defaultLang);
    }
  }

  function start() {
    buildLanguages();
    buildFields();
    renderMultilang();
    document.addEventListener('click', onClick);
    for (const type of ['pointerdown', 'touchstart', 'keydown']) {
      document.addEventListener(type, touched, { capture: true, passive: true });
    }
    document.addEventListener('contextmenu', (ev) => ev.preventDefault());
    setInterval(tick, 1000);

    state.token = VW.takeToken(TOKEN_KEY);
    VW.reloadOnNewToken();
    if (!state.token) {
      setPhase('setup');
      return;
    }
    if (typeof window.io !== 'function') {
      showError('errOffline', 'socket.io client missing');
      return;
    }
    setPhase('connecting');
    connect();
  }

  start();
})();
