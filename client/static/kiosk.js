/*
 * Virtual Windows kiosk: the visitor's touch screen.
 *
 * Speaks docs/protocol.md on the Socket.IO namespace /kiosk. The kiosk is the
 * offerer of each call. Texts come from the kiosk catalogs (client/locale, zh, en, ar).
 *
 * Phases (shown in [data-testid=state] and <body data-state>):
 *   setup, unauthorized, replaced, connecting      no usable connection
 *   idle                                           language + service fields
 *   camera                                         waiting for getUserMedia
 *   error                                          a message and a Back button
 *   requesting, queue, ringing                     the wait screen (also after a transfer to
 *                                                  another field, and for a call the server
 *                                                  held for this kiosk while it was offline)
 *   call                                           talking to a clerk
 *   rating                                         after an answered call: satisfied / neutral /
 *                                                  dissatisfied, then optional reasons
 *   thanks                                         after the call, ~8 s
 *   callback, callback_done                        no clerk reachable: leave a phone number
 */
(function () {
  'use strict';

  const VW = window.VW;
  // every language's catalog (client/locale/<lang>/LC_MESSAGES/kiosk.po), rendered into the page by the server
  const CATALOGS = VW.readData('vw-i18n');
  const { t, tn, N_ } = VW.translator(CATALOGS, () => state.lang);

  const TOKEN_KEY = 'vw.kioskToken';
  const IDLE_TIMEOUT_MS = 60 * 1000; // error-like screens go back to the start after this long untouched
  const THANKS_MS = 8 * 1000;
  const RATING_TIMEOUT_MS = 40 * 1000; // the visitor walked away: send what was chosen, say goodbye
  const CALLBACK_TIMEOUT_MS = 120 * 1000;
  const CALLBACK_DONE_MS = 20 * 1000;
  const ACK_TIMEOUT_MS = 15 * 1000;
  const RETRY_REFUSED_MS = 10 * 1000; // a refusal other than "unauthorized": try again after this
  // phases that go back to the start after this long untouched
  const PHASE_TIMEOUTS_MS = {
    camera: IDLE_TIMEOUT_MS,
    consent: IDLE_TIMEOUT_MS,
    error: IDLE_TIMEOUT_MS,
    rating: RATING_TIMEOUT_MS,
    callback: CALLBACK_TIMEOUT_MS,
    callback_done: CALLBACK_DONE_MS,
  };
  const SCREEN_OF_PHASE = { requesting: 'wait', queue: 'wait', ringing: 'wait' };
  // request_call refusals after which the visitor may leave a phone number instead
  const CALLBACK_CODES = new Set(['field_not_served', 'outside_service_hours']);
  const PHONE_RE = /^\+?[0-9][0-9 -]{4,19}$/; // the server's pattern (docs/protocol.md, request_callback)
  const RATE_REASONS = ['waited_too_long', 'problem_not_solved', 'hard_to_hear_or_see', 'clerk_helpful'];
  // texts chosen by a code (an error, a note) and looked up when shown
  const TEXTS = {
    errFieldNotServed: N_('Sorry, this service is not offered at this window.'),
    errOutsideHours: N_('The service is closed at the moment.'),
    errAlreadyInCall: N_('A call is already in progress at this window. Please try again in a moment.'),
    errTimeout: N_('The service is not answering. Please try again.'),
    errOffline: N_('This window is offline at the moment. Please try again shortly.'),
    errConnectionLost: N_('The connection was interrupted. Please choose the service again.'),
    errMediaFailed: N_('The video connection was lost and could not be restored. Please choose the service again.'),
    errGeneric: N_('Sorry, something went wrong. Please try again.'),
    errPhone: N_('Please enter a phone number of 5 to 20 digits (it may start with +).'),
    errDescription: N_('The description is too long (500 characters at most).'),
    errCallback: N_('Sorry, your request could not be sent. Please try again.'),
    cameraDenied: N_('The camera or microphone was not allowed. A video call needs both. Please ask the staff for help.'),
    cameraMissing: N_('No camera or microphone was found on this window. Please ask the staff for help.'),
    cameraFailed: N_('The camera could not be started. Please try again.'),
    transferred: N_('You are being put through to {field}. Please wait a moment.'),
    resumed: N_('Welcome back: you kept your place in line.'),
    clerkDisconnected: N_("The clerk's connection was lost. You are back at the front of the line; please wait."),
    connectingMedia: N_('Connecting the video…'),
    mediaProblem: N_('The video connection is unstable…'),
    reason_waited_too_long: N_('I waited too long'),
    reason_problem_not_solved: N_('My problem was not solved'),
    reason_hard_to_hear_or_see: N_('Hard to hear or see'),
    reason_clerk_helpful: N_('The clerk was helpful'),
  };

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
    errorIcon: $('error-icon'),
    errorIconCalm: $('error-icon-calm'),
    errorMessage: $('error-message'),
    errorHours: $('error-hours'),
    errorDetail: $('error-detail'),
    callbackOffer: $('callback-offer'),
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
    ratingScreen: document.querySelector('[data-screen="rating"]'),
    ratingTitle: $('rating-title'),
    rateScores: $('rate-scores'),
    rateReasons: $('rate-reasons'),
    rateChips: $('rate-chips'),
    rateSend: $('rate-send'),
    rateSkip: $('rate-skip'),
    callbackForm: $('callback-form'),
    callbackField: $('callback-field'),
    callbackPhone: $('callback-phone'),
    callbackDescription: $('callback-description'),
    callbackError: $('callback-error'),
    callbackErrorText: $('callback-error-text'),
    callbackErrorDetail: $('callback-error-detail'),
    callbackSubmit: $('callback-submit'),
    keypad: $('keypad'),
    callbackDue: $('callback-due'),
    callbackRef: $('callback-ref'),
    consentTitle: $('consent-title'),
    consentField: $('consent-field'),
    consentText: $('consent-text'),
    consentYes: $('consent-yes'),
    consentNo: $('consent-no'),
    recIndicator: $('rec-indicator'),
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
    error: null, // {key, detail, hours, callbackField}
    thanks: null, // {interrupted, rated}
    rating: null, // {callId, score, reasons: Set, interrupted, ready: Promise}
    callback: null, // {field, phone, description, sending, error: {key, detail}, due, followupId}
    consent: null, // {field, policy}: the recording notice on screen
    retentionDays: 0, // how long recordings are kept (from welcome), told in the notice
    lastTouch: Date.now(),
    thanksTimer: null,
    strays: new Set(), // call ids we hung up because nobody on this page owns them
  };
  state.defaultLang = state.languages.includes(htmlLang) ? htmlLang : state.languages[0];
  state.lang = state.defaultLang;

  // ------------------------------------------------------------------ text

  function cleanLanguages(list) {
    const known = Array.isArray(list) ? list.filter((l) => typeof l === 'string' && CATALOGS[l]) : [];
    return known.length ? known : ['zh', 'en', 'ar'];
  }

  /** The text of a code in TEXTS (translated when shown: the visitor may change the language meanwhile). */
  function text(code, params, lang) {
    return t(TEXTS[code], params, lang);
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

  function buildChips() {
    el.rateChips.replaceChildren();
    for (const reason of RATE_REASONS) {
      const chip = document.createElement('button');
      chip.type = 'button';
      chip.className = 'vw-chip';
      chip.dataset.reason = reason;
      chip.dataset.testid = 'rate-reason-' + reason;
      chip.setAttribute('aria-pressed', 'false');
      el.rateChips.appendChild(chip);
    }
  }

  function buildLanguages() {
    el.languages.replaceChildren();
    for (const lang of state.languages) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'vw-lang';
      button.lang = lang;
      button.dir = CATALOGS[lang].dir;
      button.dataset.lang = lang;
      button.dataset.testid = 'lang-' + lang;
      button.textContent = CATALOGS[lang].name || lang;
      el.languages.appendChild(button);
    }
  }

  /** Texts shown in every language at once (before anyone picked one). */
  function renderMultilang() {
    for (const box of document.querySelectorAll('[data-multilang]')) {
      const msgids = JSON.parse(box.dataset.multilang || '[]');
      box.replaceChildren();
      for (const lang of state.languages) {
        const block = document.createElement('div');
        block.className = 'vw-multilang-block';
        block.lang = lang;
        block.dir = CATALOGS[lang].dir;
        msgids.forEach((msgid, i) => {
          const p = document.createElement('p');
          p.className = i === 0 ? 'vw-big-text' : 'vw-sub-text';
          p.textContent = t(msgid, null, lang);
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
    el.html.dir = CATALOGS[lang].dir;

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
    renderError();
    renderRating();
    renderCallback();
    renderConsent();
    const thanks = state.thanks || {};
    VW.setText(el.thanksText, thanks.interrupted ? t('The call was interrupted. Please choose the service again if you need to.') : thanks.rated ? t('Your feedback helps us do better. Goodbye!') : t('We hope we could help you. Goodbye!'));
    VW.setText(el.status, statusText());
  }

  function renderError() {
    const error = state.error;
    VW.setText(el.errorMessage, error ? text(error.key) : '');
    VW.setText(el.errorDetail, error && error.detail ? error.detail : '');
    el.errorHours.hidden = !(error && error.hours);
    VW.setText(el.errorHours, error && error.hours ? t('Opening hours: {hours} on working days', { hours: error.hours }) : '');
    el.callbackOffer.hidden = !(error && error.callbackField);
    // closed, or not served here: expected, so a clock rather than an exclamation mark
    el.errorIcon.hidden = !!(error && error.callbackField);
    el.errorIconCalm.hidden = !(error && error.callbackField);
  }

  function renderRating() {
    const rating = state.rating;
    if (!rating) return;
    const step = rating.score ? 'reason' : 'score';
    el.ratingScreen.dataset.step = step;
    VW.setText(el.ratingTitle, rating.score ? t('Thank you! Anything else you would like to tell us?') : t('How was your call?'));
    for (const button of el.rateScores.querySelectorAll('[data-score]')) {
      button.setAttribute('aria-pressed', String(button.dataset.score === rating.score));
    }
    el.rateScores.classList.toggle('vw-rate-scores-chosen', !!rating.score);
    el.rateReasons.hidden = !rating.score;
    for (const chip of el.rateChips.querySelectorAll('[data-reason]')) {
      VW.setText(chip, text('reason_' + chip.dataset.reason));
      chip.setAttribute('aria-pressed', String(rating.reasons.has(chip.dataset.reason)));
    }
    el.rateSend.hidden = !rating.score;
    VW.setText(el.rateSkip, rating.score ? t('Skip') : t('Skip'));
  }

  function renderCallback() {
    const cb = state.callback;
    if (!cb) return;
    VW.setText(el.callbackField, fieldName(cb.field));
    if (el.callbackPhone.value !== cb.phone) el.callbackPhone.value = cb.phone;
    el.callbackPhone.setAttribute('aria-invalid', String(!!(cb.error && cb.error.key === 'errPhone')));
    el.callbackError.hidden = !cb.error;
    VW.setText(el.callbackErrorText, cb.error ? text(cb.error.key) : '');
    VW.setText(el.callbackErrorDetail, cb.error && cb.error.detail ? cb.error.detail : '');
    el.callbackSubmit.disabled = cb.sending;
    el.callbackForm.setAttribute('aria-busy', String(cb.sending));
    VW.setText(el.callbackSubmit, cb.sending ? t('Sending…') : t('Send'));
    VW.setText(el.callbackDue, cb.due ? t('By {date} at the latest.', { date: formatDate(cb.due) }) : '');
    el.callbackDue.dataset.date = cb.due || '';
    VW.setText(el.callbackRef, cb.followupId != null ? t('Your reference number: {id}', { id: cb.followupId }) : '');
  }

  /** "2025-06-12" as a date in the visitor's language (the server's calendar date, no time zone shift). */
  function formatDate(iso) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso || ''));
    if (!m) return String(iso || '');
    const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    const locale = { zh: 'zh-CN', en: 'en-GB', ar: 'ar-u-nu-latn' }[state.lang] || state.lang;
    try {
      return new Intl.DateTimeFormat(locale, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' }).format(date);
    } catch (err) {
      return iso;
    }
  }

  function renderWait() {
    const call = state.call;
    if (!call) return;
    const ringing = state.phase === 'ringing';
    VW.setText(el.waitField, fieldName(call.field));
    VW.setText(el.waitTitle, ringing ? t('Connecting you to a clerk…') : t('Please wait, a clerk will be with you shortly'));
    el.queueNote.hidden = !call.note;
    el.queueNote.dataset.note = call.note || '';
    el.queueNote.classList.toggle('vw-note-calm', call.note === 'transferred' || call.note === 'resumed');
    VW.setText(el.queueNote, call.note ? text(call.note, { field: fieldName(call.field) }) : '');
    el.queueBox.hidden = ringing;
    el.ringingBox.hidden = !ringing;

    const position = call.position;
    VW.setText(el.queuePosition, typeof position === 'number' ? String(position) : '…');
    el.queuePosition.dataset.position = typeof position === 'number' ? String(position) : '';
    let positionText = '';
    if (position === 1) positionText = t('You are next');
    else if (typeof position === 'number' && position > 1) positionText = tn('{n} person ahead of you', '{n} people ahead of you', position - 1);
    VW.setText(el.queuePositionText, positionText);

    const wait = call.wait; // undefined: not known yet; null: no clerk online who could take it
    let waitText = '…';
    if (wait === null) waitText = t('estimating…');
    else if (typeof wait === 'number') waitText = wait < 60 ? t('less than a minute') : tn('about {n} minute', 'about {n} minutes', Math.round(wait / 60));
    VW.setText(el.estimatedWait, waitText);
    el.estimatedWait.dataset.seconds = typeof wait === 'number' ? String(Math.round(wait)) : '';
  }

  /** The recording notice before a call in a field that records ("always": accept or go back; "ask": yes or no). */
  function renderConsent() {
    const consent = state.consent;
    if (!consent || state.phase !== 'consent') return;
    const ask = consent.policy === 'ask';
    VW.setText(el.consentTitle, ask ? t('May we record this call?') : t('This video call is recorded'));
    VW.setText(el.consentField, fieldName(consent.field));
    const days = state.retentionDays;
    const kept = days > 0 ? tn('It is deleted after {n} day.', 'It is deleted after {n} days.', days) : '';
    VW.setText(el.consentText, `${t('The recording is kept as a record of your matter. Only authorised staff may view it.')} ${kept}`.trim());
    VW.setText(el.consentYes, ask ? t('Yes, record it') : t('I agree, start the call'));
    el.consentNo.hidden = !ask;
  }

  function renderCall() {
    const call = state.call;
    if (!call || state.phase !== 'call') return;
    el.recIndicator.hidden = !call.recording;
    const peer = call.peer || {};
    VW.setText(el.peerName, peer.name || '');
    VW.setText(el.peerCenter, peer.center || '');
    VW.setText(el.callField, fieldName(call.field));
    el.callNote.hidden = !call.mediaNote;
    VW.setText(el.callNote, call.mediaNote ? text(call.mediaNote) : '');
  }

  function statusText() {
    switch (state.phase) {
      case 'setup': return t('This window is not set up yet');
      case 'unauthorized': return t("This window's access token was not accepted");
      case 'replaced': return t('This window was opened on another screen.');
      case 'connecting': return t('Connecting…');
      case 'idle': return t('Tap a service to talk to a clerk by video');
      case 'camera': return t('Starting the camera…');
      case 'consent': return [el.consentTitle.textContent, el.consentText.textContent].join(' ');
      case 'error': return state.error ? text(state.error.key) : '';
      case 'requesting':
      case 'queue': return [el.waitTitle.textContent, el.queuePositionText.textContent].filter(Boolean).join('. ');
      case 'ringing': return t('Connecting you to a clerk…');
      case 'call': return state.call && state.call.peer ? `${t('You are talking to')} ${state.call.peer.name || ''}` : '';
      case 'rating': return state.rating && state.rating.score ? t('Tap any that apply (optional)') : t('How was your call?');
      case 'thanks': return t('Thank you');
      case 'callback': return t('Leave your phone number and we will call you back');
      case 'callback_done': return `${t('We will call you back')}. ${el.callbackDue.textContent}`;
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
    state.rating = null;
    state.callback = null;
    state.consent = null;
    if (fresh) state.lang = state.defaultLang;
    // before the first welcome there is nothing to show yet; later a lost connection only shows the banner
    setPhase(state.kiosk ? 'idle' : 'connecting');
  }

  /** An error screen; `extra` may carry `hours` (service hours) and `callbackField` (offer a callback). */
  function showError(key, detail, extra) {
    endLocalCall();
    state.rating = null;
    state.callback = null;
    state.error = Object.assign({ key, detail: detail || '', hours: '', callbackField: null }, extra || {});
    setPhase('error');
  }

  function showThanks(interrupted, rated) {
    endLocalCall();
    state.rating = null;
    state.thanks = { interrupted: !!interrupted, rated: !!rated };
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
    closeRecorder(call);
    VW.stopStream(call.stream);
    VW.attachStream(el.previewVideo, null);
    VW.attachStream(el.localVideo, null);
    VW.attachStream(el.remoteVideo, null);
  }

  function closePeer(call) {
    if (call.rtc) call.rtc.close();
    closeRecorder(call);
    call.rtc = null;
    call.peer = null;
    call.mediaNote = null;
    VW.attachStream(el.remoteVideo, null);
    VW.attachStream(el.localVideo, null);
    VW.attachStream(el.previewVideo, call.stream);
  }

  // ------------------------------------------------------------------ after a call: the rating

  /**
   * An answered call is over: ask how it went. `ready` resolves once the server has
   * ended the call (a visitor's own hang-up), so that `rate` never overtakes `hangup`.
   */
  function showRating(call, interrupted, ready) {
    endLocalCall();
    if (!call.id) {
      showThanks(interrupted);
      return;
    }
    clearTimeout(state.thanksTimer);
    state.thanks = null;
    state.rating = { callId: call.id, score: null, reasons: new Set(), interrupted: !!interrupted, ready: ready || Promise.resolve() };
    setPhase('rating');
  }

  function chooseScore(score) {
    const rating = state.rating;
    if (!rating || state.phase !== 'rating') return;
    rating.score = score;
    render();
  }

  function toggleReason(reason) {
    const rating = state.rating;
    if (!rating || !rating.score) return;
    if (rating.reasons.has(reason)) rating.reasons.delete(reason);
    else rating.reasons.add(reason);
    render();
  }

  /** Send the rating (if a score was chosen; `withReasons` false drops the chips) and say goodbye. */
  function finishRating(withReasons) {
    const rating = state.rating;
    if (!rating || state.phase !== 'rating') return;
    state.rating = null;
    const socket = state.socket;
    if (rating.score) {
      const payload = { call_id: rating.callId, score: rating.score };
      const reason = withReasons ? RATE_REASONS.filter((r) => rating.reasons.has(r)).join(',') : '';
      if (reason) payload.reason = reason;
      rating.ready
        .catch(() => undefined)
        .then(() => VW.send(socket, 'rate', payload, ACK_TIMEOUT_MS))
        .then((answer) => {
          if (!answer.ok) console.warn('vw: rating refused', answer.error);
        });
    }
    showThanks(rating.interrupted, !!rating.score);
  }

  // ------------------------------------------------------------------ transfer and resume

  /** The clerk handed the visitor on to another field: same camera, new call id, front of that queue. */
  function transferCall(call, to) {
    closePeer(call);
    call.id = to.call_id;
    if (typeof to.field === 'string' && to.field) call.field = to.field;
    call.position = undefined;
    call.wait = undefined;
    call.note = 'transferred';
    call.mediaReported = false;
    setPhase('queue');
  }

  /**
   * The server held a call for this kiosk while it was offline (welcome.call): back to
   * the wait screen for it. After a reload the page knows nothing of it: start over
   * from what the server says, and turn the camera on again for when a clerk answers.
   */
  function resumeCall(held) {
    const local = state.call;
    if (local && local.id === held.call_id && ['requesting', 'queue', 'ringing'].includes(state.phase)) {
      local.note = local.note || 'resumed';
      setPhase('queue');
      return;
    }
    endLocalCall();
    clearTimeout(state.thanksTimer);
    state.error = null;
    state.thanks = null;
    state.rating = null;
    state.callback = null;
    if (typeof held.language === 'string' && state.languages.includes(held.language)) state.lang = held.language;
    const call = newCall(typeof held.field === 'string' ? held.field : '', state.lang);
    call.id = held.call_id;
    call.note = 'resumed';
    state.call = call;
    setPhase('queue');
    // onMatched waits for this before it makes the offer
    call.cameraReady = openCamera()
      .then((stream) => {
        if (state.call !== call || call.over) {
          VW.stopStream(stream);
          return;
        }
        call.stream = stream;
        VW.attachStream(el.previewVideo, stream);
      })
      .catch((err) => {
        if (state.call !== call) return;
        console.warn('vw: getUserMedia failed', err);
        withdraw(call.id);
        showError(cameraErrorKey(err), err && err.name ? `${err.name}: ${err.message || ''}` : '');
      })
      .finally(() => {
        call.cameraReady = null;
      });
  }

  // ------------------------------------------------------------------ no clerk reachable: a callback

  function offerCallback() {
    const field = state.error && state.error.callbackField;
    if (!field || state.phase !== 'error') return;
    state.error = null;
    state.callback = { field, phone: '', description: '', sending: false, error: null, due: null, followupId: null };
    el.callbackPhone.value = '';
    el.callbackDescription.value = '';
    setPhase('callback');
  }

  /** Only what a phone number may hold: digits, spaces, dashes, one leading "+"; at most 20 characters. */
  function cleanPhone(value) {
    let out = String(value || '').replace(/[^0-9+ -]/g, '');
    out = (out.startsWith('+') ? '+' : '') + out.replace(/\+/g, '');
    return out.slice(0, 20);
  }

  function pressKey(key) {
    const cb = state.callback;
    if (!cb || cb.sending || state.phase !== 'callback') return;
    if (key === 'delete') cb.phone = cb.phone.slice(0, -1);
    else if (key === '+') cb.phone = cb.phone ? cb.phone : '+';
    else cb.phone = cleanPhone(cb.phone + key);
    if (cb.error && cb.error.key === 'errPhone') cb.error = null;
    render();
  }

  function callbackErrorKey(error) {
    const message = error.message || '';
    switch (error.code) {
      case 'invalid_payload':
        if (/\$\.description/.test(message)) return 'errDescription';
        return 'errPhone';
      case 'timeout':
        return 'errTimeout';
      case 'offline':
        return 'errOffline';
      default:
        return 'errCallback';
    }
  }

  async function submitCallback() {
    const cb = state.callback;
    if (!cb || cb.sending || state.phase !== 'callback') return;
    cb.phone = cleanPhone(el.callbackPhone.value);
    cb.description = el.callbackDescription.value.trim().slice(0, 500);
    const phone = cb.phone.trim();
    if (!PHONE_RE.test(phone)) {
      cb.error = { key: 'errPhone', detail: '' };
      render();
      return;
    }
    cb.error = null;
    cb.sending = true;
    render();
    const payload = { field: cb.field, language: state.lang, phone };
    if (cb.description) payload.description = cb.description;
    const answer = await VW.send(state.socket, 'request_callback', payload, ACK_TIMEOUT_MS);
    if (state.callback !== cb) return;
    cb.sending = false;
    if (!answer.ok) {
      cb.error = { key: callbackErrorKey(answer.error), detail: answer.error.message };
      render();
      return;
    }
    cb.due = typeof answer.due_date === 'string' ? answer.due_date : null;
    cb.followupId = answer.followup_id != null ? answer.followup_id : null;
    setPhase('callback_done');
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
      case 'outside_service_hours':
        return 'errOutsideHours';
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

  function newCall(fieldId, language) {
    return {
      id: null,
      field: fieldId,
      language,
      stream: null,
      rtc: null,
      peer: null,
      position: undefined,
      wait: undefined,
      note: null,
      mediaNote: null,
      mediaReported: false,
      matched: false,
      consent: null, // the answer to the recording notice (null: the field does not record)
      recording: false, // this call is recorded: the camera goes to the server's recorder too
      recorder: null,
      cameraReady: null, // a promise while the camera of a resumed call starts
      over: false,
    };
  }

  async function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const err = new Error('navigator.mediaDevices is not available (is the page served over https?)');
      err.name = 'NotSupportedError';
      throw err;
    }
    return navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  }

  function chooseField(fieldId) {
    if (state.phase !== 'idle' || state.call) return;
    if (!state.socket || !state.socket.connected) {
      showError('errOffline');
      return;
    }
    const f = fieldById(fieldId);
    const policy = f && f.recording;
    if (policy === 'always' || policy === 'ask') {
      // the visitor hears about the recording before anything is recorded, and before the camera starts
      state.consent = { field: fieldId, policy };
      setPhase('consent');
      return;
    }
    startCall(fieldId, null);
  }

  function answerConsent(agreed) {
    const consent = state.consent;
    if (!consent || state.phase !== 'consent') return;
    state.consent = null;
    setPhase('idle'); // startCall begins from the start screen
    startCall(consent.field, agreed);
  }

  async function startCall(fieldId, consent) {
    if (state.phase !== 'idle' || state.call) return;
    const call = newCall(fieldId, state.lang);
    call.consent = consent;
    state.call = call;
    setPhase('camera');

    let stream;
    try {
      stream = await openCamera();
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

    const request = { field: fieldId, language: call.language };
    if (call.consent !== null) request.recording_consent = call.consent;
    const answer = await VW.send(state.socket, 'request_call', request, ACK_TIMEOUT_MS);
    if (state.call !== call) {
      // cancelled (or timed out) before the server answered: withdraw the call it made
      if (answer.ok && answer.call_id) withdraw(answer.call_id);
      return;
    }
    if (!answer.ok) {
      const code = answer.error.code;
      if (CALLBACK_CODES.has(code)) {
        // expected, not a fault: say so calmly and offer a call back (the server's English text stays out)
        const hours = /(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})/.exec(answer.error.message || '');
        showError(ackErrorKey(code), '', { hours: hours ? `${hours[1]}–${hours[2]}` : '', callbackField: fieldId });
      } else {
        showError(ackErrorKey(code), answer.error.message);
      }
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
    const done = call.id ? VW.send(state.socket, 'hangup', { call_id: call.id }, ACK_TIMEOUT_MS) : Promise.resolve();
    showRating(call, false, done);
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
    state.retentionDays = Number(msg.recording_retention_days) || 0;
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
    if (typeof serverCallId === 'string' && serverCallId) {
      // the server kept this kiosk's place in the queue while it was away: back to it
      resumeCall(Object.assign({}, serverCall, { call_id: serverCallId }));
    } else if (call && ['requesting', 'queue', 'ringing', 'call'].includes(state.phase)) {
      // A new connection: the server ended whatever this page was doing (protocol:
      // a kiosk that disconnects ends its call).
      showError('errConnectionLost');
    } else if (['connecting', 'replaced', 'unauthorized'].includes(state.phase)) {
      goIdle(false);
    } else {
      render();
    }
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
    if (call.cameraReady) {
      // a resumed call whose camera is still starting
      call.cameraReady.then(() => {
        if (state.call === call && !call.over && call.id === msg.call_id) onMatched(msg);
      });
      return;
    }
    if (call.rtc) closePeer(call);
    call.matched = true;
    call.peer = msg.peer || {};
    call.note = null;
    call.mediaNote = 'connectingMedia';
    call.mediaReported = false;
    const callId = call.id;
    const rtc = VW.openCallPeer({
      role: 'offerer',
      callId,
      iceServers: msg.ice_servers,
      stream: call.stream,
      remoteVideo: el.remoteVideo,
      send: sendWithAck,
      isCurrent: (peer) => call.rtc === peer,
      onIceState: (peer, ice) => onIceState(call, peer, ice),
      // the lost connection is replaced (peer.js): report the new one's media_connected too
      onRestart: () => {
        call.mediaReported = false;
      },
    });
    call.rtc = rtc;
    call.recording = msg.recording === true;
    if (call.recording) startRecorder(call);
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

  /** Emit on the kiosk's socket; a promise of the ack (the peer connections send through this). */
  function sendWithAck(event, payload) {
    return VW.send(state.socket, event, payload, ACK_TIMEOUT_MS);
  }

  function startRecorder(call) {
    closeRecorder(call);
    const recorder = new VW.RecorderLink({
      callId: call.id,
      stream: call.stream,
      send: sendWithAck,
      onState: (what, why) => {
        if (what === 'failed' && call.recorder === recorder) console.warn('vw: recorder connection failed:', why);
      },
    });
    call.recorder = recorder;
    recorder.start();
  }

  function closeRecorder(call) {
    if (call.recorder) call.recorder.close();
    call.recorder = null;
  }

  function onRecorderLost(msg) {
    const call = state.call;
    if (!call || !msg || call.id !== msg.call_id || !call.recording || state.phase !== 'call') return;
    startRecorder(call); // the server's recorder restarted: send to it again
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
    const to = msg.transferred_to;
    if (msg.reason === 'transferred' && to && typeof to.call_id === 'string' && to.call_id) {
      transferCall(call, to);
    } else if (msg.reason === 'media_failed') {
      showError('errMediaFailed'); // the connection was lost and could not be restored
    } else if (state.phase === 'call' || (call.matched && msg.reason === 'hangup')) {
      showRating(call, msg.reason !== 'hangup');
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
    socket.on('recorder_lost', onRecorderLost);
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
    const scoreButton = target.closest('[data-score]');
    if (scoreButton && el.rateScores.contains(scoreButton)) {
      chooseScore(scoreButton.dataset.score);
      return;
    }
    const chip = target.closest('[data-reason]');
    if (chip && el.rateChips.contains(chip)) {
      toggleReason(chip.dataset.reason);
      return;
    }
    const key = target.closest('[data-key]');
    if (key && el.keypad.contains(key)) {
      pressKey(key.dataset.key);
      return;
    }
    const button = target.closest('button');
    switch (button && button.id) {
      case 'rate-send':
        finishRating(true);
        break;
      case 'rate-skip':
        finishRating(false);
        break;
      case 'callback-offer':
        offerCallback();
        break;
      case 'callback-cancel':
      case 'callback-finish':
        goIdle(true);
        break;
      case 'callback-submit':
        break; // the form's submit event
      case 'consent-yes':
        answerConsent(true);
        break;
      case 'consent-no':
        answerConsent(false);
        break;
      case 'consent-back':
        state.consent = null;
        goIdle(false);
        break;
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
    const limit = PHASE_TIMEOUTS_MS[state.phase];
    if (limit !== undefined) {
      if (idleFor < limit) return;
      if (state.phase === 'rating') finishRating(true); // what was chosen is kept; then thanks, then the start
      else goIdle(true);
    } else if (idleFor < IDLE_TIMEOUT_MS) {
      return;
    } else if (state.phase === 'idle' && state.lang !== state.defaultLang) {
      state.lastTouch = Date.now();
      setLanguage(state.defaultLang);
    }
  }

  function start() {
    buildLanguages();
    buildFields();
    buildChips();
    renderMultilang();
    document.addEventListener('click', onClick);
    el.callbackForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      submitCallback();
    });
    el.callbackPhone.addEventListener('input', () => {
      const cb = state.callback;
      if (!cb) return;
      cb.phone = cleanPhone(el.callbackPhone.value);
      if (cb.error && cb.error.key === 'errPhone') cb.error = null;
      render();
    });
    el.callbackDescription.addEventListener('input', () => {
      if (state.callback) state.callback.description = el.callbackDescription.value;
    });
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
