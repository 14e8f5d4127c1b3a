/*
 * Virtual Windows: the visitor's and the clerk's recordings of a call, played side by side and in sync
 * (session detail page, administrators and, if allowed, the clerk of the call).
 *
 * Each participant's recorder starts when that participant's media arrives, so the recordings start a few
 * seconds apart. Both are put on one timeline that begins at the earlier start: a video's own position is the
 * timeline position minus its offset (the difference of the data-started-at times, epoch seconds). One
 * Play/Pause button, a seek slider and -5 s / +5 s buttons drive both.
 *
 * While playing, the timeline follows the first video that is playing inside its own range (the leader; a
 * leader that is buffering holds the timeline); the other video follows and is put back in place when it
 * drifts more than DRIFT_S. Before its start and after its end a video waits, paused. When neither recording
 * covers a stretch of the timeline, the clock runs on by itself.
 *
 * Nothing is fetched before Play (preload="none"): the server logs a playback when a recording's bytes are
 * first sent under the page view's playback id (data-playback, also in each video's src). An ES module, no
 * build step (the pages' CSP forbids inline scripts).
 */

import { readData } from './shared/dom.js';
import { translator } from './shared/i18n.js';

const DRIFT_S = 0.3;
const TICK_MS = 100;
const STEP_S = 5;
const END_SLACK_S = 0.05;
const CATALOGS = readData('vw-i18n');
const { t, N_ } = translator(CATALOGS, () => Object.keys(CATALOGS)[0]);
const ERRORS = { 1: N_('aborted'), 2: N_('network error'), 3: N_('cannot decode'), 4: N_('refused or not found') };

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

function setupPlayer(root) {
  const tracks = [...root.querySelectorAll('video[data-started-at]')].map((video) => ({
    video,
    figure: video.closest('figure'),
    offset: 0,
    duration: 0,
  }));
  if (!tracks.length) return;
  const playButton = root.querySelector('[data-action="play"]');
  const seek = root.querySelector('.vwa-seek');
  const out = root.querySelector('.vwa-clock');
  const status = root.querySelector('[data-role="status"]');
  let pos = 0; // the timeline position, seconds from the earlier start
  let total = 0;
  let playing = false;
  let timer = null;
  let lastWall = 0;
  let dragging = false;

  function say(text) {
    if (status) status.textContent = text;
  }

  function length(track) {
    const d = track.video.duration;
    return Number.isFinite(d) && d > 0 ? d : track.duration;
  }

  function layout() {
    const starts = tracks.map((track) => parseFloat(track.video.dataset.startedAt) || 0);
    const t0 = Math.min(...starts);
    tracks.forEach((track, i) => {
      track.duration = parseFloat(track.video.dataset.duration) || 0;
      track.offset = starts[i] - t0;
      track.video.dataset.offset = track.offset.toFixed(3);
    });
    total = Math.max(0, ...tracks.map((track) => track.offset + length(track)));
    seek.max = total.toFixed(1);
  }

  const local = (track, at) => at - track.offset;
  const within = (track, at) => local(track, at) >= 0 && local(track, at) < length(track) - END_SLACK_S;
  const running = (track) => !track.video.paused && !track.video.seeking && track.video.readyState >= 2;

  // Put a video where the timeline says (within its own length), if it is off by more than DRIFT_S.
  function place(track, at, always) {
    const x = Math.min(Math.max(local(track, at), 0), length(track));
    if (always || Math.abs(track.video.currentTime - x) > DRIFT_S) track.video.currentTime = x;
  }

  function start(track) {
    const started = track.video.play();
    if (started && started.catch) {
      started.catch((err) => {
        if (err.name !== 'AbortError') say(`${err.name}: ${err.message}`);
      });
    }
  }

  function render() {
    if (!dragging) seek.value = String(pos);
    const text = `${clock(pos)} / ${clock(total)}`;
    out.textContent = text;
    seek.setAttribute('aria-valuetext', text);
    playButton.textContent = playing ? t('Pause') : t('Play');
    root.dataset.state = playing ? 'playing' : 'paused';
    root.dataset.position = pos.toFixed(2);
  }

  // While playing: the others follow the leader; a video outside its range waits, paused.
  function follow() {
    const leader = tracks.find((track) => within(track, pos) && running(track));
    for (const track of tracks) {
      const video = track.video;
      if (!within(track, pos)) {
        if (!video.paused) video.pause();
        if (local(track, pos) < 0 && !video.seeking) place(track, pos, false); // waits at its beginning
        continue;
      }
      if (track !== leader && !video.seeking) place(track, pos, false);
      if (video.paused) start(track);
    }
  }

  function tick() {
    const wall = performance.now();
    const elapsed = (wall - lastWall) / 1000;
    lastWall = wall;
    if (!playing) return;
    const leader = tracks.find((track) => within(track, pos) && running(track));
    if (leader) pos = leader.video.currentTime + leader.offset;
    else if (!tracks.some((track) => within(track, pos))) pos += elapsed; // neither recording covers this stretch
    if (pos >= total - END_SLACK_S) {
      finish();
      return;
    }
    follow();
    render();
  }

  function stopTimer() {
    if (timer !== null) window.clearInterval(timer);
    timer = null;
  }

  function play() {
    if (pos >= total - END_SLACK_S) seekTo(0);
    playing = true;
    lastWall = performance.now();
    follow();
    stopTimer();
    timer = window.setInterval(tick, TICK_MS);
    render();
  }

  function pause() {
    if (playing) tick();
    playing = false;
    stopTimer();
    for (const track of tracks) track.video.pause();
    render();
  }

  function finish() {
    playing = false;
    stopTimer();
    pos = total;
    for (const track of tracks) track.video.pause();
    render();
  }

  function seekTo(position) {
    pos = Math.min(Math.max(position, 0), total);
    for (const track of tracks) place(track, pos, true);
    if (playing) {
      lastWall = performance.now();
      follow();
    }
    render();
  }

  playButton.addEventListener('click', () => (playing ? pause() : play()));
  root.querySelector('[data-action="back"]').addEventListener('click', () => seekTo(pos - STEP_S));
  root.querySelector('[data-action="forward"]').addEventListener('click', () => seekTo(pos + STEP_S));
  seek.addEventListener('pointerdown', () => {
    dragging = true;
  });
  seek.addEventListener('input', () => seekTo(parseFloat(seek.value) || 0));
  seek.addEventListener('change', () => {
    dragging = false;
    seekTo(parseFloat(seek.value) || 0);
  });
  for (const track of tracks) {
    const mute = track.figure && track.figure.querySelector('input[data-mute]');
    if (mute) mute.addEventListener('change', () => (track.video.muted = mute.checked));
    track.video.addEventListener('loadedmetadata', () => {
      layout();
      render();
    });
    track.video.addEventListener('error', () => {
      const error = track.video.error;
      const name = track.figure && track.figure.querySelector('strong');
      const who = name ? name.textContent : '';
      const why = error && ERRORS[error.code] ? t(ERRORS[error.code]) : String(error ? error.code : '');
      say(t('The recording of {who} cannot be played ({why}).', { who, why }));
    });
  }

  // "Show" in the recordings table: another recording of that participant (a reconnect makes a second one).
  for (const button of document.querySelectorAll('[data-show-recording]')) {
    button.addEventListener('click', () => {
      const track = tracks.find((tr) => tr.figure && tr.figure.dataset.participant === button.dataset.participant);
      if (!track) return;
      pause();
      const video = track.video;
      video.dataset.recordingId = button.dataset.showRecording;
      video.dataset.startedAt = button.dataset.startedAt;
      video.dataset.duration = button.dataset.duration;
      // the page view's playback id: the server logs this recording's playback once, not each range request
      const playback = encodeURIComponent(root.dataset.playback || '');
      video.src = `/recordings/${encodeURIComponent(button.dataset.showRecording)}?playback=${playback}`;
      const label = track.figure.querySelector('[data-role="start"]');
      if (label) label.textContent = button.dataset.startLabel || '';
      layout();
      seekTo(0);
      say(`Recording ${button.dataset.showRecording} is in the player.`);
    });
  }

  layout();
  render();
}

function init() {
  for (const root of document.querySelectorAll('.vwa-player')) setupPlayer(root);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
