/*
 * Virtual Windows: the media of one call, as the kiosk (offerer) and the clerk console (answerer) both run it,
 * wired to the protocol (docs/protocol.md):
 * - the peer connection to the other side (peer.js: CallPeer, which replaces a lost connection once), its
 *   `signal` messages, `media_connected` once each connection (attempt) connects, `media_failed` when the
 *   media could not be restored, and the other side's picture and sound in a <video>;
 * - when the call is recorded, the same camera and microphone sent to the server's recorder as well
 *   (recorder.js: RecorderLink), started again by record() after `recorder_lost`.
 * Once closed it sends nothing and reports nothing.
 */

import { attachStream } from './media.js';
import { CallPeer } from './peer.js';
import { RecorderLink } from './recorder.js';

export class CallMedia {
  /**
   * @param {object} o
   * @param {'offerer'|'answerer'} o.role          from `matched.role`
   * @param {string} o.callId
   * @param {RTCIceServer[]} o.iceServers          from `matched.ice_servers`
   * @param {'all'|'relay'} [o.iceTransportPolicy]  from `matched.ice_transport_policy`
   * @param {MediaStream|null} o.stream            local camera and microphone (null: receive only)
   * @param {HTMLVideoElement} o.remoteVideo       shows the other side
   * @param {function(string, object): Promise<object>} o.send  emit with ack ({ok, ...} or {ok: false, error})
   * @param {function(string|null)} o.onMediaState  after each ICE state change of the current connection:
   *     "connected", "unstable" (disconnected or failed), "connecting" (checking, before this connection
   *     first connected) or null (another state)
   * @param {number=} o.attempt  the attempt to start at (1: this page replaces a connection lost with a reload)
   * @param {function(string, string=)} o.onRecorderState  the recorder connection: "connecting", "recording",
   *     or "failed" with the reason (already logged to the console)
   */
  constructor(o) {
    this.callId = o.callId;
    this.stream = o.stream || null;
    this.send = o.send;
    this.onMediaState = o.onMediaState || function () {};
    this.onRecorderState = o.onRecorderState || function () {};
    this.closed = false;
    this.reported = false; // media_connected was sent for the current connection
    this.recorder = null; // the RecorderLink while the call is sent to the recorder
    this.peer = new CallPeer({
      role: o.role,
      attempt: o.attempt,
      iceServers: o.iceServers,
      iceTransportPolicy: o.iceTransportPolicy,
      stream: this.stream,
      onSignal: (payload) => {
        this.send('signal', Object.assign({ call_id: this.callId }, payload)).then((answer) => {
          if (!answer.ok) console.warn('vw: signal refused', answer.error);
        });
      },
      onRemoteStream: (stream) => {
        if (!this.closed) attachStream(o.remoteVideo, stream);
      },
      onIceState: (ice) => this._iceState(ice),
      // the lost connection was replaced (peer.js): report the new one's media_connected too
      onRestart: () => {
        this.reported = false;
      },
      onFailed: () => {
        if (!this.closed) this.send('media_failed', { call_id: this.callId });
      },
    });
  }

  /** Offerer: make and send the offer (a promise; it rejects when the offer could not be made). */
  offer() {
    return this.peer.offer();
  }

  /** A `signal` message of the other side for this call. */
  handleSignal(msg) {
    return this.peer.handleSignal(msg);
  }

  /** Send the camera and microphone to the server's recorder (again, after `recorder_lost`). */
  record() {
    if (this.closed) return;
    if (this.recorder) this.recorder.close();
    const recorder = new RecorderLink({
      callId: this.callId,
      stream: this.stream,
      send: this.send,
      onState: (what, why) => {
        if (this.recorder !== recorder || this.closed) return;
        if (what === 'failed') console.warn('vw: recorder connection failed:', why);
        this.onRecorderState(what, why);
      },
    });
    this.recorder = recorder;
    recorder.start();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.peer.close();
    if (this.recorder) this.recorder.close();
  }

  _iceState(ice) {
    if (this.closed) return;
    let state = null;
    if (ice === 'connected' || ice === 'completed') {
      state = 'connected';
      if (!this.reported) {
        this.reported = true;
        this.send('media_connected', { call_id: this.callId });
      }
    } else if (ice === 'disconnected' || ice === 'failed') {
      state = 'unstable';
    } else if (ice === 'checking' && !this.reported) {
      state = 'connecting';
    }
    this.onMediaState(state);
  }
}
