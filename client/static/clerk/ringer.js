/*
 * Virtual Windows clerk console: the ring sound (WebAudio, no files). Browsers let a page play sound only
 * after a click or a key: the console calls unlock() on each, and shows a hint while the sound is off.
 */

export class Ringer {
  /** @param {function()} onStateChange  the audio context was unlocked (or suspended): redraw the hint */
  constructor(onStateChange) {
    this.onStateChange = onStateChange || function () {};
    this.ctx = null;
    this.timer = null;
  }

  unlock() {
    const AudioCtx = window.AudioContext || window.webkitAudioContext;
    if (!AudioCtx) return;
    if (!this.ctx) {
      try {
        this.ctx = new AudioCtx();
      } catch (err) {
        return;
      }
      this.ctx.onstatechange = () => this.onStateChange();
    }
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  running() {
    return !!this.ctx && this.ctx.state === 'running';
  }

  start() {
    this.stop();
    this.unlock();
    this.burst();
    this.timer = setInterval(() => this.burst(), 2500);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

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
  }
}
