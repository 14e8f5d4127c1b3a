/*
 * Virtual Windows clerk console.
 *
 * Speaks docs/protocol.md on the Socket.IO namespace /clerk. The clerk is the
 * answerer of each call. Keyboard: A = accept, D = decline, H = hang up,
 * T = transfer menu, Ctrl+Enter = save the wrap-up.
 *
 * Phases (shown in [data-testid=state] and <body data-state>):
 *   setup, unauthorized, replaced, connecting   no usable connection
 *   idle                                        away or available, no call
 *   ringing                                     a call is offered (ring card)
 *   call                                        talking to a visitor
 *   wrap_up                                     the call is over: log its matters (wrap-up form)
 * The server's status (away, available, ringing, busy, wrap_up) is in
 * [data-testid=status] as text and as its data-status attribute.
 *
 * A wrap-up stays on the page until it is saved, also after the server's
 * wrap-up time ran out (the server accepts late wrap-ups); the form then shows
 * below a new ring or call.
 */
(function () {
  'use strict';

  const VW = window.VW;

  const TOKEN_KEY = 'vw.clerkToken';
  const ACK_TIMEOUT_MS = 15 * 1000;
  const RETRY_REFUSED_MS = 10 * 1000;
  const INFO_NOTICE_MS = 15 * 1000;
  const LOG_LENGTH = 20;
  const KEEP_ENDED = 10; // calls remembered after they end, for a call_ended that comes after a local hang-up


  const $ = (id) => document.getElementById(id);
  const el = {
    html: document.documentElement,
    state: $('clerk-state'),
    banner: $('banner'),
    clerkName: $('clerk-name'),
    clerkCenter: $('clerk-center'),
    status: $('status'),
    setAvailable: $('set-available'),
    setAway: $('set-away'),
    signOut: $('sign-out'),
    notice: $('notice'),
    setupPanel: $('setup-panel'),
    setupTitle: $('setup-title'),
    setupText: $('setup-text'),
    reconnect: $('reconnect'),
    ringCard: $('ring-card'),
    ringField: $('ring-field'),
    ringRegion: $('ring-region'),
    ringKiosk: $('ring-kiosk'),
    ringLanguage: $('ring-language'),
    ringWaited: $('ring-waited'),
    ringCountdown: $('ring-countdown'),
    ringCountdownBar: $('ring-countdown-bar'),
    soundHint: $('sound-hint'),
    accept: $('accept'),
    decline: $('decline'),
    callPanel: $('call-panel'),
    remoteVideo: $('remote-video'),
    localVideo: $('local-video'),
    peerName: $('peer-name'),
    peerRegion: $('peer-region'),
    peerLanguage: $('peer-language'),
    callField: $('call-field'),
    callTimer: $('call-timer'),
    recIndicator: $('rec-indicator'),
    recText: $('rec-text'),
    callNote: $('call-note'),
    mediaNote: $('media-note'),
    muteMic: $('mute-mic'),
    muteCamera: $('mute-camera'),
    hangup: $('hangup'),
    idlePanel: $('idle-panel'),
    idleText: $('idle-text'),
    clerkFields: $('clerk-fields'),
    clerkLanguages: $('clerk-languages'),
    clerkRegions: $('clerk-regions'),
    callSummary: $('call-summary'),
    callLog: $('call-log'),
    statusCountdown: $('status-countdown'),
    loginRow: $('login-row'),
    logoutForm: $('logout-form'),
    transfer: $('transfer'),
    transferMenu: $('transfer-menu'),
    transferFields: $('transfer-fields'),
    wrapupForm: $('wrapup-form'),
    wrapupClockLabel: $('wrapup-clock-label'),
    wrapupCountdown: $('wrapup-countdown'),
    wrapupCall: $('wrapup-call'),
    wrapupLate: $('wrapup-late'),
    wrapupPending: $('wrapup-pending'),
    wrapupMatters: $('wrapup-matters'),
    wrapupFormError: $('wrapup-form-error'),
    wrapupAddMatter: $('wrapup-add-matter'),
    wrapupSubmit: $('wrapup-submit'),
    wrapupSubmitLabel: $('wrapup-submit-label'),
    wrapupDone: $('wrapup-done'),
    wrapupDoneText: $('wrapup-done-text'),
    wrapupDoneFollowups: $('wrapup-done-followups'),
  };

  const lang = (el.html.getAttribute('lang') || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';

  // catalog texts (client/locale/<lang>/LC_MESSAGES/staff.po) in the console's language, rendered into the page
  const { t, tp, N_ } = VW.translator(VW.readData('vw-i18n'), () => lang);
  // texts chosen by a code (a media note, an ending, a follow-up kind) and looked up when shown
  const TEXTS = {
    mediaInsecure: N_('The camera needs a secure page (https or localhost): receive only.'),
    mediaDenied: N_('Camera and microphone were not allowed: receive only.'),
    noCamera: N_('No camera: the visitor can hear you but not see you.'),
    noMedia: N_('No camera or microphone: receive only, the visitor can neither see nor hear you.'),
    connectingMedia: N_('Connecting the video…'),
    mediaProblem: N_('The video connection is unstable…'),
    notSetUpTitle: N_('This console is not set up yet'),
    notSetUpText: N_('Open it once as /clerk#token=… with your clerk token (from “vwindow clerk add”; “vwindow serve --demo” prints demo links), or log in.'),
    signedOutTitle: N_('Signed out'),
    signedOutText: N_('The token was removed from this browser. Open /clerk#token=… to sign in again.'),
    unauthorizedTitle: N_('Your clerk token was not accepted'),
    unauthorizedText: N_('It may have been revoked. Ask an administrator for a new one and open /clerk#token=… again.'),
    sessionExpiredTitle: N_('Your login session has ended'),
    sessionExpiredText: N_('Log in again to take calls.'),
    replacedTitle: N_('This console was opened in another window'),
    replacedText: N_('A clerk can be connected from one window at a time. Press “Reconnect” to use this one.'),
    end_hangup_clerk: N_('you hung up'),
    end_hangup_visitor: N_('the visitor hung up'),
    end_hangup_system: N_('ended'),
    end_visitor_disconnected: N_("the visitor's connection was lost"),
    end_clerk_disconnected: N_('your connection was lost'),
    end_cancelled: N_('cancelled'),
    end_transferred: N_('transferred'),
    end_media_failed: N_('the connection was lost'),
    ringEnded_timeout: N_('The call was not answered in time and went to another clerk.'),
    ringEnded_declined: N_('Call declined; it goes to the next clerk.'),
    ringEnded_cancelled: N_('The visitor cancelled the call.'),
    ringEnded_visitor_disconnected: N_('The visitor left before the call was answered.'),
    kind_simple: N_('simple'),
    kind_general: N_('general'),
    kind_complex: N_('complex'),
  };
  const STATUS_NAMES = {
    away: () => tp('status', 'Away'),
    available: () => tp('status', 'Available'),
    ringing: () => tp('status', 'Ringing'),
    busy: () => tp('status', 'In a call'),
    offline: () => tp('status', 'Offline'),
    wrap_up: () => tp('status', 'Wrap-up'),
  };

  /** The text of a code in TEXTS, or undefined. */
  function text(code, params) {
    return code in TEXTS ? t(TEXTS[code], params) : undefined;
  }
  const baseTitle = document.title;
  const initial = VW.readData();

  const state = {
    token: null,
    socket: null,
    conn: 'connecting', // setup | unauthorized | replaced | signedout | connecting | online
    clerk: null,
    status: null, // the server's: away | available | ringing | busy
    fields: Array.isArray(initial.fields) ? initial.fields : [],
    ring: null,
    call: null,
    notice: null, // {text, kind}
    noticeTimer: null,
    log: [],
    loggedIn: initial.logged_in_clerk === true, // came through /login: the session cookie identifies the clerk
    wrapupTimeoutS: 0,
    ended: new Map(), // call id -> a call that ended on this page (kept for its wrap-up)
    wrapups: [], // calls to wrap up, oldest first; the form shows the first
    wrapupDone: null, // {field, matters, followups} after the last successful wrap-up
    transferOpen: false,
  };

  function fieldName(id) {
    const f = state.fields.find((x) => x && x.id === id);
    return f ? VW.pickName(f.names, lang, f.id) : id || '';
  }

  const LIST_SEPARATOR = lang === 'zh' ? '、' : ', ';

  function languageName(code) {
    return (initial.language_names || {})[code] || code || '';
  }

  function phase() {
    if (state.conn !== 'online' && !state.call) return state.conn === 'signedout' ? 'setup' : state.conn;
    if (state.call) return 'call';
    if (state.ring) return 'ringing';
    if (state.wrapups.length) return 'wrap_up';
    return 'idle';
  }

  function dateText(iso) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso || ''));
    if (!m) return String(iso || '');
    const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    try {
      return new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', {
        weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC',
      }).format(date);
    } catch (err) {
      return iso;
    }
  }

  // ------------------------------------------------------------------ ring sound (WebAudio, no files)

  const Ringer = {
    ctx: null,
    timer: null,
    unlock() {
      const AudioCtx = window.AudioContext || window.webkitAudioContext;
      if (!AudioCtx) return;
      if (!this.ctx) {
        try {
          this.ctx = new AudioCtx();
        } catch (err) {
          return;
        }
        this.ctx.onstatechange = () => {
          if (state.ring) render(); // hide the "click to enable sound" hint
        };
      }
      if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    },
    running() {
      return !!this.ctx && this.ctx.state === 'running';
    },
    start() {
      this.stop();
      this.unlock();
      this.burst();
      this.timer = setInterval(() => this.burst(), 2500);
    },
    stop() {
      clearInterval(this.timer);
      this.timer = null;
    },
    burst() {
      const ctx = this.ctx;
      if (!ctx || ctx.state !== 'running') return;
      const t0 = ctx.currentTime + 0.02;
      const notes = [[0, 880], [0.18, 660], [0.5, 880], [0.68, 660]];
      for (const [offset, freq] of notes) {
        const start = t0 + offset;
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = 'sine';
        osc.frequency.setValueAtTime(freq, start);
        gain.gain.setValueAtTime(0, start);
        gain.gain.linearRampToValueAtTime(0.25, start + 0.015);
        gain.gain.linearRampToValueAtTime(0, start + 0.16);
        osc.connect(gain).connect(ctx.destination);
        osc.start(start);
        osc.stop(start + 0.2);
      }
    },
  };

  // ------------------------------------------------------------------ rendering

  function setNotice(text, kind) {
    clearTimeout(state.noticeTimer);
    state.notice = text ? { text, kind: kind || 'info' } : null;
    if (text && (kind || 'info') === 'info') {
      state.noticeTimer = setTimeout(() => setNotice(null), INFO_NOTICE_MS);
    }
    render();
  }

  function render() {
    const p = phase();
    VW.setText(el.state, p);
    document.body.dataset.state = p;

    // header
    const clerk = state.clerk;
    VW.setText(el.clerkName, clerk ? clerk.name || clerk.id || '' : '');
    VW.setText(el.clerkCenter, clerk ? clerk.center || '' : '');
    const online = state.conn === 'online' && !!state.socket && state.socket.connected;
    const status = online ? state.status || 'away' : 'offline';
    el.status.dataset.status = status;
    VW.setText(el.status, STATUS_NAMES[status] ? STATUS_NAMES[status]() : status);
    el.setAvailable.disabled = !online || status !== 'away';
    el.setAway.disabled = !online || status === 'away' || status === 'busy';
    el.setAvailable.setAttribute('aria-pressed', String(status === 'available'));
    el.setAway.setAttribute('aria-pressed', String(status === 'away'));
    el.signOut.hidden = !state.token;
    renderStatusClock();

    // notice
    el.notice.hidden = !state.notice;
    el.notice.dataset.kind = state.notice ? state.notice.kind : '';
    VW.setText(el.notice, state.notice ? state.notice.text : '');

    // setup panel
    const setupKeys = {
      setup: ['notSetUpTitle', 'notSetUpText'],
      signedout: ['signedOutTitle', 'signedOutText'],
      unauthorized: state.token ? ['unauthorizedTitle', 'unauthorizedText'] : ['sessionExpiredTitle', 'sessionExpiredText'],
      replaced: ['replacedTitle', 'replacedText'],
    }[state.conn];
    el.setupPanel.hidden = !setupKeys || !!state.call;
    if (setupKeys) {
      VW.setText(el.setupTitle, text(setupKeys[0]));
      VW.setText(el.setupText, text(setupKeys[1]));
    }
    el.reconnect.hidden = state.conn !== 'replaced';
    // no token and no login session: logging in is the other way in
    el.loginRow.hidden = !['setup', 'signedout', 'unauthorized'].includes(state.conn) || (state.loggedIn && state.conn !== 'unauthorized');

    // idle panel
    el.idlePanel.hidden = !(p === 'idle' || (p === 'connecting' && state.clerk));
    VW.setText(el.idleText, !online ? t('Connecting…') : status === 'available' ? t('You are available. Waiting for a call…') : t('You are away. Press “Set available” to receive calls.'));
    if (clerk) {
      VW.setText(el.clerkFields, (clerk.fields || []).map(fieldName).join(LIST_SEPARATOR));
      VW.setText(el.clerkLanguages, (clerk.languages || []).map(languageName).join(LIST_SEPARATOR));
      VW.setText(el.clerkRegions, (clerk.regions || []).join(LIST_SEPARATOR));
    }

    renderRing();
    renderCall();
    renderWrapup();
    renderWrapupDone();
    renderLog();
    document.title = state.ring ? `☎ ${t('Incoming call')} · ${baseTitle}` : baseTitle;
  }

  function renderRing() {
    const ring = state.ring;
    el.ringCard.hidden = !ring;
    if (!ring) return;
    VW.setText(el.ringField, fieldName(ring.field));
    VW.setText(el.ringRegion, VW.pickName(ring.region_names, lang, ring.region || ''));
    VW.setText(el.ringKiosk, (ring.kiosk && ring.kiosk.name) || '');
    VW.setText(el.ringLanguage, languageName(ring.language));
    el.accept.disabled = !!ring.busy;
    el.decline.disabled = !!ring.busy;
    el.soundHint.hidden = Ringer.running();
    renderRingClock();
  }

  function renderRingClock() {
    const ring = state.ring;
    if (!ring) return;
    const now = performance.now();
    const leftMs = Math.max(0, ring.deadline - now);
    VW.setText(el.ringCountdown, t('{n} s', { n: Math.ceil(leftMs / 1000) }));
    el.ringCountdown.dataset.seconds = String(Math.ceil(leftMs / 1000));
    const total = Math.max(1, ring.timeoutMs);
    el.ringCountdownBar.style.setProperty('width', `${Math.round((100 * leftMs) / total)}%`);
    VW.setText(el.ringWaited, VW.formatDuration((ring.waited_s || 0) + (now - ring.receivedAt) / 1000));
  }

  function renderCall() {
    const call = state.call;
    el.callPanel.hidden = !call;
    if (!call) return;
    const peer = call.peer || {};
    VW.setText(el.peerName, peer.name || '');
    VW.setText(el.peerRegion, VW.pickName(peer.region_names, lang, peer.region || ''));
    VW.setText(el.peerLanguage, languageName(peer.language));
    VW.setText(el.callField, fieldName(call.field));
    el.callNote.hidden = !call.iceNote;
    VW.setText(el.callNote, call.iceNote ? text(call.iceNote) : '');
    el.mediaNote.hidden = !call.mediaNote;
    VW.setText(el.mediaNote, call.mediaNote ? text(call.mediaNote) : '');
    el.recIndicator.hidden = !call.recording;
    el.recIndicator.classList.toggle('vw-rec-failed', call.recording === 'failed');
    VW.setText(el.recText, call.recording === 'failed'
      ? t('Not recorded: the recorder could not be reached')
      : t('This call is recorded'));

    const stream = call.stream;
    const hasMic = !!stream && stream.getAudioTracks().length > 0;
    const hasCamera = !!stream && stream.getVideoTracks().length > 0;
    el.muteMic.disabled = !hasMic;
    el.muteCamera.disabled = !hasCamera;
    el.muteMic.setAttribute('aria-pressed', String(call.micMuted));
    el.muteCamera.setAttribute('aria-pressed', String(call.cameraMuted));
    VW.setText(el.muteMic, call.micMuted ? t('Unmute microphone') : t('Mute microphone'));
    VW.setText(el.muteCamera, call.cameraMuted ? t('Turn camera on') : t('Turn camera off'));
    renderTransfer(call);
    renderCallClock();
  }

  function renderTransfer(call) {
    const open = state.transferOpen && !call.transferring;
    el.transfer.disabled = !!call.transferring || !state.socket || !state.socket.connected;
    el.transfer.setAttribute('aria-expanded', String(open));
    VW.setText(el.transfer.querySelector('[data-i18n]'), call.transferring
      ? t('Transferring to {field}…', { field: fieldName(call.transferring) })
      : t('Transfer to another department'));
    el.transferMenu.hidden = !open;
    const others = state.fields.filter((f) => f && typeof f.id === 'string' && f.id !== call.field);
    const ids = others.map((f) => f.id).join(' ');
    if (el.transferFields.dataset.ids !== ids) {
      el.transferFields.dataset.ids = ids;
      el.transferFields.replaceChildren(
        ...others.map((f) => {
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'vw-btn-small vw-transfer-field';
          b.dataset.transferField = f.id;
          b.dataset.testid = 'transfer-to-' + f.id;
          return b;
        }),
      );
    }
    for (const b of el.transferFields.querySelectorAll('[data-transfer-field]')) {
      VW.setText(b, fieldName(b.dataset.transferField));
    }
  }

  // ------------------------------------------------------------------ the wrap-up form

  function matterTypes(fieldId) {
    const f = state.fields.find((x) => x && x.id === fieldId);
    return f && Array.isArray(f.matters) ? f.matters.filter((m) => m && typeof m.id === 'string') : [];
  }

  const wrapupForm = new VW.WrapupForm({
    el: {
      form: el.wrapupForm,
      clockLabel: el.wrapupClockLabel,
      countdown: el.wrapupCountdown,
      call: el.wrapupCall,
      late: el.wrapupLate,
      pending: el.wrapupPending,
      matters: el.wrapupMatters,
      formError: el.wrapupFormError,
      addMatter: el.wrapupAddMatter,
      submit: el.wrapupSubmit,
      submitLabel: el.wrapupSubmitLabel,
    },
    t,
    lang,
    matterTypes,
  });

  function renderWrapup() {
    const w = state.wrapups[0] || null;
    wrapupForm.render(w, {
      visible: !['setup', 'signedout', 'unauthorized', 'replaced'].includes(state.conn),
      callText: w
        ? t('{kiosk} · {field} · {duration} · {how}', {
          kiosk: (w.peer && w.peer.name) || '',
          field: fieldName(w.field),
          duration: VW.formatDuration(w.duration),
          how: w.how,
        })
        : '',
      more: state.wrapups.length - 1,
      left: wrapupClock(w),
    });
  }

  /** Seconds of wrap-up time left while the server says wrap_up, else null. */
  function wrapupLeft() {
    if (state.status !== 'wrap_up' || !state.wrapups.length) return null;
    const latest = state.wrapups[state.wrapups.length - 1];
    return Math.max(0, Math.ceil((latest.deadline - performance.now()) / 1000));
  }

  /** The form's countdown: only for the latest call's wrap-up (the one the server is timing). */
  function wrapupClock(w) {
    const left = wrapupLeft();
    return left !== null && w === state.wrapups[state.wrapups.length - 1] ? left : null;
  }

  function renderStatusClock() {
    const left = wrapupLeft();
    el.statusCountdown.hidden = left === null;
    VW.setText(el.statusCountdown, left === null ? '' : VW.formatDuration(left));
    el.statusCountdown.dataset.seconds = left === null ? '' : String(left);
  }

  function renderWrapupDone() {
    const done = state.wrapupDone;
    el.wrapupDone.hidden = !done || phase() !== 'idle';
    if (!done) return;
    VW.setText(el.wrapupDoneText, done.already ? t('This call had been wrapped up already.') : t('Matters logged for {field}: {n}.', { n: done.matters, field: fieldName(done.field) }));
    const lines = done.followups.length
      ? done.followups.map((f) => ({
        text: t('Follow-up #{id} ({kind}): due {date}', { id: f.id, kind: text('kind_' + f.kind) || f.kind, date: dateText(f.due_date) }),
        due: f.due_date,
      }))
      : done.already ? [] : [{ text: t('No follow-up was opened.'), due: '' }];
    const key = lines.map((l) => l.text).join('\n');
    if (el.wrapupDoneFollowups.dataset.key !== key) {
      el.wrapupDoneFollowups.dataset.key = key;
      el.wrapupDoneFollowups.replaceChildren(...lines.map((l) => VW.WrapupForm.make('li', {
        text: l.text, dataset: l.due ? { testid: 'wrapup-followup-due', due: l.due } : {},
      })));
    }
  }

  function renderCallClock() {
    const call = state.call;
    if (call) VW.setText(el.callTimer, VW.formatDuration((Date.now() - call.startedAt) / 1000));
  }

  function renderLog() {
    // the latest call in [data-testid=call-summary], the ones before in the list below it
    const latest = state.log[0];
    VW.setText(el.callSummary, latest || t('No calls yet.'));
    el.callSummary.classList.toggle('vw-summary-empty', !latest);
    const older = state.log.slice(1);
    const shown = Array.from(el.callLog.children, (li) => li.textContent);
    if (shown.length !== older.length || shown.some((line, i) => line !== older[i])) {
      el.callLog.replaceChildren(
        ...older.map((line) => {
          const li = document.createElement('li');
          li.textContent = line;
          return li;
        }),
      );
    }
  }

  function tick() {
    if (state.ring) renderRingClock();
    if (state.call) renderCallClock();
    if (state.wrapups.length) {
      wrapupForm.renderClock(wrapupClock(state.wrapups[0]));
      renderStatusClock();
    }
  }

  // ------------------------------------------------------------------ actions

  function send(event, payload) {
    return VW.send(state.socket, event, payload, ACK_TIMEOUT_MS);
  }

  async function setStatus(status) {
    Ringer.unlock(); // a click: the browser lets the ring sound play from now on
    const answer = await send('set_status', { status });
    if (answer.ok) {
      if (typeof answer.status === 'string') state.status = answer.status;
      if (state.notice && state.notice.kind === 'warn' && status === 'available') setNotice(null);
      render();
    } else {
      setNotice(t('The server refused: {message}', { message: answer.error.message || answer.error.code }), 'error');
    }
  }

  async function accept() {
    const ring = state.ring;
    if (!ring || ring.busy) return;
    ring.busy = true;
    Ringer.stop();
    render();
    const answer = await send('accept', { call_id: ring.call_id });
    // `matched` usually comes before this answer and has already set up the call
    if (!answer.ok) {
      if (state.ring === ring) state.ring = null;
      setNotice(t('The server refused: {message}', { message: answer.error.message || answer.error.code }), 'error');
    }
  }

  async function decline() {
    const ring = state.ring;
    if (!ring || ring.busy) return;
    ring.busy = true;
    Ringer.stop();
    render();
    const answer = await send('decline', { call_id: ring.call_id });
    if (state.ring === ring) state.ring = null;
    if (!answer.ok) setNotice(t('The server refused: {message}', { message: answer.error.message || answer.error.code }), 'error');
    else render();
  }

  function hangup() {
    const call = state.call;
    if (!call) return;
    finishCall(call, 'hangup', 'clerk');
    send('hangup', { call_id: call.id }).then((answer) => {
      if (!answer.ok && answer.error.code !== 'no_such_call') console.warn('vw: hangup refused', answer.error);
    });
  }

  function toggleMic() {
    const call = state.call;
    if (!call || !call.stream) return;
    call.micMuted = !call.micMuted;
    for (const track of call.stream.getAudioTracks()) track.enabled = !call.micMuted;
    render();
  }

  function toggleCamera() {
    const call = state.call;
    if (!call || !call.stream) return;
    call.cameraMuted = !call.cameraMuted;
    for (const track of call.stream.getVideoTracks()) track.enabled = !call.cameraMuted;
    render();
  }

  function signOut() {
    VW.forgetToken(TOKEN_KEY);
    state.token = null;
    if (state.call) finishCall(state.call, 'hangup', 'clerk');
    stopRing();
    if (state.socket) state.socket.disconnect();
    state.socket = null;
    state.conn = 'signedout';
    state.clerk = null;
    setNotice(null);
  }

  // ------------------------------------------------------------------ wrap-up and transfer

  function startWrapup(call) {
    if (state.wrapups.some((w) => w.callId === call.id)) return;
    state.wrapups.push(VW.WrapupForm.create(call, state.wrapupTimeoutS));
    state.wrapupDone = null;
    render();
    if (state.wrapups[0].callId === call.id && !state.call && !state.ring) wrapupForm.focus(state.wrapups[0], 0, 'matter_type');
  }

  function onWrapupInput(ev) {
    if (wrapupForm.readInput(state.wrapups[0], ev.target)) renderWrapup();
  }

  function addMatter() {
    const w = state.wrapups[0];
    const index = wrapupForm.add(w);
    if (index < 0) return;
    render();
    wrapupForm.focus(w, index, 'matter_type');
  }

  function removeMatter(uid) {
    const w = state.wrapups[0];
    const index = wrapupForm.remove(w, uid);
    if (index < 0) return;
    render();
    wrapupForm.focus(w, index, 'matter_type');
  }

  async function submitWrapup() {
    const w = state.wrapups[0];
    if (!w || w.sending || el.wrapupForm.hidden) return;
    const problem = wrapupForm.check(w);
    if (problem) {
      w.error = problem;
      renderWrapup();
      wrapupForm.focus(w, problem.index, problem.field);
      return;
    }
    w.error = null;
    w.sending = true;
    render();
    const answer = await send('wrap_up', VW.WrapupForm.payload(w));
    w.sending = false;
    if (!answer.ok && answer.error.code !== 'already_done') {
      // keep what was typed; show the refusal at its matter
      w.error = wrapupForm.placeError(w, answer.error);
      render();
      if (w.error.index !== null) wrapupForm.focus(w, w.error.index, w.error.field || 'matter_type');
      return;
    }
    // saved (already_done: an earlier attempt whose answer was lost had saved it)
    state.wrapups = state.wrapups.filter((x) => x !== w);
    state.wrapupDone = {
      field: w.field,
      matters: Array.isArray(answer.matters) ? answer.matters.length : w.matters.length,
      followups: Array.isArray(answer.followups) ? answer.followups : [],
      already: !answer.ok,
    };
    render();
    if (state.wrapups.length && !state.call && !state.ring) wrapupForm.focus(state.wrapups[0], 0, 'matter_type');
    else if (!el.wrapupDone.hidden) el.wrapupDone.querySelector('button').focus({ preventScroll: true });
  }

  function toggleTransfer(open) {
    const call = state.call;
    if (!call || call.transferring) return;
    state.transferOpen = open === undefined ? !state.transferOpen : open;
    render();
    if (state.transferOpen) {
      const first = el.transferFields.querySelector('button');
      if (first) first.focus({ preventScroll: true });
    }
  }

  async function transferTo(fieldId) {
    const call = state.call;
    if (!call || call.transferring || !fieldId || fieldId === call.field) return;
    call.transferring = fieldId;
    state.transferOpen = false;
    render();
    const answer = await send('transfer', { call_id: call.id, field: fieldId });
    if (!answer.ok) {
      call.transferring = null;
      if (state.call === call) render();
      const text = answer.error.code === 'field_not_served' ? t('No clerk serves {field} for this visitor’s region: the visitor stays with you.', { field: fieldName(fieldId) })
        : t('The server refused: {message}', { message: answer.error.message || answer.error.code });
      setNotice(text, 'error');
      return;
    }
    // call_ended (transferred, wrap_up) has usually come already; if not, end the call on this side now
    if (!call.over) finishCall(call, 'transferred', 'clerk');
    setNotice(t('The visitor is being put through to {field}. Please wrap up your part.', { field: fieldName(fieldId) }), 'info');
  }

  // ------------------------------------------------------------------ the call

  async function localMedia() {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) return { stream: null, note: 'mediaInsecure' };
    try {
      return { stream: await md.getUserMedia({ video: true, audio: true }), note: null };
    } catch (err) {
      console.warn('vw: camera and microphone unavailable', err);
      if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) return { stream: null, note: 'mediaDenied' };
    }
    try {
      return { stream: await md.getUserMedia({ audio: true }), note: 'noCamera' };
    } catch (err) {
      return { stream: null, note: 'noMedia' };
    }
  }

  async function onMatched(msg) {
    if (!msg || typeof msg.call_id !== 'string') return;
    // the call's service field (for the wrap-up's matter types): from `matched`, else from the ring
    const ringField = state.ring && state.ring.call_id === msg.call_id ? state.ring.field : undefined;
    stopRing();
    if (state.call) finishCall(state.call, 'hangup', 'system', true);
    const call = {
      id: msg.call_id,
      peer: msg.peer || {},
      field: typeof msg.field === 'string' && msg.field ? msg.field : ringField,
      startedAt: Date.now(),
      stream: null,
      rtc: null,
      signals: [], // signals that come while the camera starts
      iceNote: 'connectingMedia',
      mediaNote: null,
      mediaReported: false,
      micMuted: false,
      cameraMuted: false,
      transferring: null, // the field the visitor is being handed on to
      recording: msg.recording === true, // true, or 'failed' when the recorder could not be reached
      recorder: null,
      over: false,
    };
    state.call = call;
    state.transferOpen = false;
    state.wrapupDone = null;
    render();

    const media = await localMedia();
    if (state.call !== call) {
      VW.stopStream(media.stream);
      return;
    }
    call.stream = media.stream;
    call.mediaNote = media.note;
    VW.attachStream(el.localVideo, media.stream);
    const rtc = VW.openCallPeer({
      role: 'answerer',
      callId: call.id,
      iceServers: msg.ice_servers,
      stream: media.stream,
      remoteVideo: el.remoteVideo,
      send,
      isCurrent: (peer) => call.rtc === peer,
      onIceState: (peer, ice) => onIceState(call, peer, ice),
      // the kiosk replaced the lost connection (peer.js): report the new one's media_connected too
      onRestart: () => {
        call.mediaReported = false;
      },
    });
    call.rtc = rtc;
    if (call.recording) startRecorder(call);
    const waiting = call.signals;
    call.signals = null;
    for (const s of waiting) rtc.handleSignal(s);
    render();
  }

  function startRecorder(call) {
    if (call.recorder) call.recorder.close();
    const recorder = new VW.RecorderLink({
      callId: call.id,
      stream: call.stream,
      send,
      onState: (what, why) => {
        if (call.recorder !== recorder || state.call !== call) return;
        if (what === 'failed') {
          console.warn('vw: recorder connection failed:', why);
          call.recording = 'failed'; // the clerk should know the matter is not being recorded
        } else {
          call.recording = true;
        }
        render();
      },
    });
    call.recorder = recorder;
    recorder.start();
  }

  function onRecorderLost(msg) {
    const call = state.call;
    if (!call || !msg || msg.call_id !== call.id || !call.recorder) return;
    startRecorder(call); // the server's recorder restarted: send to it again
  }

  function onIceState(call, rtc, ice) {
    if (state.call !== call || call.rtc !== rtc) return;
    if (ice === 'connected' || ice === 'completed') {
      call.iceNote = null;
      if (!call.mediaReported) {
        call.mediaReported = true;
        send('media_connected', { call_id: call.id });
      }
    } else if (ice === 'disconnected' || ice === 'failed') {
      call.iceNote = 'mediaProblem';
    }
    render();
  }

  function onSignal(msg) {
    const call = state.call;
    if (!call || !msg || msg.call_id !== call.id) return;
    if (call.rtc) call.rtc.handleSignal(msg);
    else if (call.signals) call.signals.push(msg);
  }

  function endText(reason, by, call) {
    if (reason === 'transferred' && call && call.transferring) return t('transferred to {field}', { field: fieldName(call.transferring) });
    for (const key of [`end_${reason}_${by}`, `end_${reason}`]) {
      if (key in TEXTS) return text(key);
    }
    return [reason, by].filter(Boolean).join(', ');
  }

  /** Close the call on this side and log a summary line. */
  function finishCall(call, reason, by, quiet) {
    if (call.over) return;
    call.over = true;
    call.endedAt = Date.now();
    call.how = endText(reason, by, call);
    state.ended.set(call.id, call);
    for (const id of state.ended.keys()) {
      if (state.ended.size <= KEEP_ENDED) break;
      state.ended.delete(id);
    }
    if (state.call === call) state.call = null;
    state.transferOpen = false;
    if (call.rtc) call.rtc.close();
    if (call.recorder) call.recorder.close();
    VW.stopStream(call.stream);
    VW.attachStream(el.remoteVideo, null);
    VW.attachStream(el.localVideo, null);
    if (!quiet) {
      const how = call.how;
      const time = new Date().toLocaleTimeString(lang === 'zh' ? 'zh-CN' : undefined, { hour: '2-digit', minute: '2-digit' });
      state.log.unshift(
        t('{time} · {kiosk} · {field} · {duration} · {how}', {
          time,
          kiosk: (call.peer && call.peer.name) || '',
          field: fieldName(call.field),
          duration: VW.formatDuration((Date.now() - call.startedAt) / 1000),
          how,
        }),
      );
      state.log.length = Math.min(state.log.length, LOG_LENGTH);
    }
    render();
  }

  // ------------------------------------------------------------------ server events

  function stopRing() {
    Ringer.stop();
    state.ring = null;
  }

  function onWelcome(msg) {
    msg = msg || {};
    state.conn = 'online';
    state.clerk = msg.clerk || null;
    state.status = typeof msg.status === 'string' ? msg.status : 'away';
    if (typeof msg.wrapup_timeout_s === 'number') state.wrapupTimeoutS = msg.wrapup_timeout_s;
    if (Array.isArray(msg.fields) && msg.fields.length) state.fields = msg.fields;
    el.banner.hidden = true;
    if (state.ring) stopRing();
    if (state.call) {
      // a new connection: the server put the visitor back in the queue (protocol, "Dropped connections")
      finishCall(state.call, 'clerk_disconnected', 'system');
      setNotice(t('Your connection dropped during the call; the visitor was put back at the front of the queue.'), 'warn');
      return;
    }
    if (Array.isArray(msg.pending_wrapups)) {
      // answered calls still waiting for their matters (e.g. this page was reloaded): offer the form again
      for (const p of msg.pending_wrapups) {
        if (!p || typeof p.call_id !== 'string') continue;
        const endedMs = typeof p.ended_at === 'number' ? p.ended_at * 1000 : Date.now();
        startWrapup({ id: p.call_id, field: p.field, peer: {}, startedAt: endedMs, endedAt: endedMs, how: '' });
        const w = state.wrapups.find((x) => x.callId === p.call_id);
        if (w && state.status !== 'wrap_up') w.late = true;
      }
    }
    if (state.status === 'wrap_up' && !state.wrapups.length) {
      // wrapping up a call this page no longer knows (it was reloaded)
      setNotice(t('You are in wrap-up for a call this page no longer shows (it was reloaded). Calls will be offered again when the wrap-up time runs out; the call is listed under “My sessions”.'), 'warn');
      return;
    }
    render();
  }

  function onStatus(msg) {
    if (!msg || typeof msg.status !== 'string') return;
    state.status = msg.status;
    if (msg.reason === 'wrapup_timeout') {
      // the server offers calls again; the form stays, a late wrap-up is still accepted
      for (const w of state.wrapups) w.late = true;
    }
    if (msg.reason === 'ring_timeout') {
      stopRing();
      setNotice(t('You missed a call and were set to away.'), 'warn');
      return;
    }
    render();
  }

  function onRing(msg) {
    if (!msg || typeof msg.call_id !== 'string') return;
    const timeout = typeof msg.timeout_s === 'number' ? msg.timeout_s : 0;
    state.ring = Object.assign({}, msg, {
      receivedAt: performance.now(),
      deadline: performance.now() + timeout * 1000,
      timeoutMs: timeout * 1000,
      busy: false,
    });
    if (state.notice && state.notice.kind !== 'error') setNotice(null);
    state.wrapupDone = null;
    Ringer.start();
    render();
    if (!el.accept.disabled) el.accept.focus({ preventScroll: true });
  }

  function onRingEnded(msg) {
    if (!msg || !state.ring || state.ring.call_id !== msg.call_id) return;
    stopRing();
    const notice = text('ringEnded_' + msg.reason) || t('The call offer was withdrawn ({reason}).', { reason: msg.reason });
    setNotice(notice, msg.reason === 'timeout' ? 'warn' : 'info');
  }

  function onCallEnded(msg) {
    if (!msg || typeof msg.call_id !== 'string') return;
    // the live call, or one this page already closed (the clerk's own hang-up or transfer)
    const call = state.call && state.call.id === msg.call_id ? state.call : state.ended.get(msg.call_id);
    if (!call) return; // e.g. a call cancelled while it rang: ring_ended said it
    if (!call.over) finishCall(call, msg.reason, msg.by);
    if (msg.reason === 'media_failed') {
      setNotice(t('The connection was lost: the video could not be restored and the call has ended. Please log the matters.'), 'warn');
    }
    if (msg.wrap_up === true) startWrapup(call);
  }

  // ------------------------------------------------------------------ connection

  function connect() {
    // a logged-in console sends no token: the session cookie goes with the handshake
    const socket = window.io('/clerk', state.token ? { auth: { token: state.token } } : {});
    state.socket = socket;
    state.conn = 'connecting';

    socket.on('connect', () => {
      el.banner.hidden = true;
    });
    socket.on('connect_error', (err) => {
      if (socket.active) {
        el.banner.hidden = false;
        render();
        return;
      }
      if (VW.isUnauthorized(err)) {
        state.conn = 'unauthorized';
        el.banner.hidden = true;
        render();
        return;
      }
      console.warn('vw: connection refused', err && err.message, err && err.data);
      el.banner.hidden = false;
      setTimeout(() => {
        if (state.socket === socket && !socket.connected && !socket.active) socket.connect();
      }, RETRY_REFUSED_MS);
    });
    socket.on('disconnect', (reason) => {
      if (state.ring) stopRing();
      if (reason === 'io server disconnect') {
        // the same clerk connected from another window
        if (state.call) finishCall(state.call, 'clerk_disconnected', 'system');
        state.conn = 'replaced';
        el.banner.hidden = true;
      } else if (reason !== 'io client disconnect') {
        state.conn = 'connecting';
        el.banner.hidden = false;
      }
      render();
    });

    socket.on('welcome', onWelcome);
    socket.on('status', onStatus);
    socket.on('ring', onRing);
    socket.on('ring_ended', onRingEnded);
    socket.on('matched', onMatched);
    socket.on('recorder_lost', onRecorderLost);
    socket.on('signal', onSignal);
    socket.on('call_ended', onCallEnded);
  }

  // ------------------------------------------------------------------ wiring

  function onClick(ev) {
    Ringer.unlock();
    const button = ev.target instanceof Element ? ev.target.closest('button') : null;
    if (!button || button.disabled) return;
    if (button.dataset.transferField) {
      transferTo(button.dataset.transferField);
      return;
    }
    if (button.dataset.removeMatter) {
      removeMatter(button.dataset.removeMatter);
      return;
    }
    switch (button.id) {
      case 'transfer':
        toggleTransfer();
        break;
      case 'wrapup-add-matter':
        addMatter();
        break;
      case 'wrapup-done-close':
        state.wrapupDone = null;
        render();
        break;
      case 'set-available':
        setStatus('available');
        break;
      case 'set-away':
        setStatus('away');
        break;
      case 'accept':
        accept();
        break;
      case 'decline':
        decline();
        break;
      case 'hangup':
        hangup();
        break;
      case 'mute-mic':
        toggleMic();
        break;
      case 'mute-camera':
        toggleCamera();
        break;
      case 'sign-out':
        signOut();
        break;
      case 'reconnect':
        if (state.socket) {
          state.conn = 'connecting';
          state.socket.connect();
          render();
        }
        break;
      default:
        break;
    }
  }

  function onKey(ev) {
    if (ev.defaultPrevented || ev.repeat) return;
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && !el.wrapupForm.hidden) {
      ev.preventDefault();
      submitWrapup();
      return;
    }
    if (ev.key === 'Escape' && state.transferOpen) {
      ev.preventDefault();
      toggleTransfer(false);
      el.transfer.focus({ preventScroll: true });
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const target = ev.target;
    if (target instanceof Element && target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]')) return;
    const key = (ev.key || '').toLowerCase();
    if (key === 'a' && state.ring && !state.ring.busy) {
      ev.preventDefault();
      accept();
    } else if (key === 'd' && state.ring && !state.ring.busy) {
      ev.preventDefault();
      decline();
    } else if (key === 'h' && state.call) {
      ev.preventDefault();
      hangup();
    } else if (key === 't' && state.call && !state.call.transferring) {
      ev.preventDefault();
      toggleTransfer();
    }
  }

  function start() {
    document.addEventListener('click', onClick);
    document.addEventListener('keydown', (ev) => {
      Ringer.unlock();
      onKey(ev);
    });
    setInterval(tick, 250);
    el.wrapupForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      submitWrapup();
    });
    el.wrapupForm.addEventListener('input', onWrapupInput);
    el.wrapupForm.addEventListener('change', onWrapupInput);
    if (el.logoutForm) {
      el.logoutForm.addEventListener('submit', (ev) => {
        if (state.call && !window.confirm(t('You are in a call. Logging out ends it for you and sends the visitor back to the queue. Log out?'))) {
          ev.preventDefault();
          return;
        }
        if (state.socket) state.socket.disconnect();
      });
    }

    const tokenInAddress = /(^|&)token=/.test(window.location.hash.replace(/^#/, ''));
    state.token = VW.takeToken(TOKEN_KEY);
    VW.reloadOnNewToken();
    // logged in through /login: the session identifies the clerk, unless a token was just given in the address
    if (state.loggedIn && !tokenInAddress) state.token = null;
    if (!state.token && state.loggedIn) {
      if (typeof window.io !== 'function') {
        setNotice('socket.io client missing', 'error');
        return;
      }
      connect();
      render();
      return;
    }
    if (!state.token) {
      state.conn = 'setup';
      render();
      return;
    }
    if (typeof window.io !== 'function') {
      setNotice('socket.io client missing', 'error');
      return;
    }
    connect();
    render();
  }

  start();
})();
