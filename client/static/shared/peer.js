/*
 * Virtual Windows: the WebRTC media of one call, shared by the kiosk (offerer)
 * and the clerk console (answerer). Signals (descriptions and ICE candidates)
 * go through the caller's `onSignal`, which sends them as the protocol's
 * `signal {call_id, description | candidate, attempt?}` message.
 *
 * A lost connection is replaced once (docs/protocol.md, "Lost media"): there is
 * no ICE restart on the same RTCPeerConnection (the aiortc bots have none), so
 * the offerer opens a NEW RTCPeerConnection, attempt 1, with the same camera and
 * microphone and sends its offer marked `attempt: 1`; the answerer replaces its
 * connection when that offer comes. Signals of an older attempt are dropped.
 * When attempt 1 is lost too (or, on the answerer, no restart offer comes),
 * `onFailed` is called once: the page tells the server `media_failed`.
 * call-media.js wires a CallPeer to the protocol for both pages.
 */

const MAX_ATTEMPT = 1; // one restart per call
const CONNECT_TIMEOUT_MS = 20000; // an attempt not connected this long after its offer (or answer) is lost
// (Chrome itself gives up on unanswered checks after about 15 s; this catches an attempt with nothing to check)
const DISCONNECTED_GRACE_MS = 5000; // `disconnected` this long counts as lost
const RESTART_WAIT_MS = 30000; // the answerer's wait for the offerer's restart offer (longer than its time to notice)

export class CallPeer {
  /**
   * @param {object} options
   * @param {'offerer'|'answerer'} options.role   from `matched.role`
   * @param {RTCIceServer[]} options.iceServers  from `matched.ice_servers`
   * @param {'all'|'relay'} [options.iceTransportPolicy]  from `matched.ice_transport_policy` (default 'all')
   * @param {MediaStream|null} options.stream     local camera and microphone (null: receive only)
   * @param {function(object)} options.onSignal   called with {description} or {candidate}, plus `attempt` after a restart
   * @param {function(MediaStream)} options.onRemoteStream
   * @param {function(string)} options.onIceState  iceConnectionState of the current connection after each change
   * @param {function(number)} options.onRestart   a new connection (this attempt) replaces the lost one
   * @param {function()} options.onFailed          the media could not be restored: send `media_failed`
   */
  constructor(options) {
    this.role = options.role === 'answerer' ? 'answerer' : 'offerer';
    this.onSignal = options.onSignal;
    this.onRemoteStream = options.onRemoteStream || function () {};
    this.onIceState = options.onIceState || function () {};
    this.onRestart = options.onRestart || function () {};
    this.onFailed = options.onFailed || function () {};
    this.iceServers = Array.isArray(options.iceServers) ? options.iceServers : [];
    this.iceTransportPolicy = options.iceTransportPolicy === 'relay' ? 'relay' : 'all';
    this.stream = options.stream || null;
    this.closed = false;
    this.failed = false; // gave up: onFailed was called
    this.chain = Promise.resolve(); // signals are applied one after the other, in order
    this.timer = null;
    // a page reloaded during a call starts at the restart (attempt 1): the other side replaces its connection
    this.attempt = Number.isInteger(options.attempt) ? options.attempt : 0;
    this.pc = this._connect();
  }

  /** Offerer: create the offer of the current attempt, set it locally and send it. */
  offer() {
    return this._enqueue(async () => {
      const pc = this.pc;
      const offer = await pc.createOffer();
      if (this._stale(pc)) return;
      await pc.setLocalDescription(offer);
      if (this._stale(pc)) return;
      this._sendDescription(pc);
      this._arm('connect', CONNECT_TIMEOUT_MS);
    });
  }

  /** Apply a `signal` message from the other side ({description} or {candidate}, maybe with `attempt`). */
  handleSignal(msg) {
    return this._enqueue(() => this._apply(msg));
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this._disarm();
    this._drop(this.pc);
  }

  // ---------------------------------------------------------------- one connection per attempt

  /** A new RTCPeerConnection for the current attempt, with the local tracks; its events are ignored once replaced. */
  _connect() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy });
    pc.vwPending = []; // remote candidates that came before the remote description
    pc.vwRemote = null;
    pc.ontrack = (ev) => {
      if (this._stale(pc)) return;
      let stream = ev.streams && ev.streams[0];
      if (!stream) {
        if (!pc.vwRemote) pc.vwRemote = new MediaStream();
        pc.vwRemote.addTrack(ev.track);
        stream = pc.vwRemote;
      }
      this.onRemoteStream(stream);
    };
    pc.onicecandidate = (ev) => {
      const c = ev.candidate;
      // null (and "") mark the end of gathering; the protocol lets us leave it out
      if (this._stale(pc) || !c || !c.candidate) return;
      this._send({ candidate: candidateInit(c) });
    };
    pc.oniceconnectionstatechange = () => {
      if (!this._stale(pc)) this.onIceState(pc.iceConnectionState);
    };
    pc.onconnectionstatechange = () => {
      if (!this._stale(pc)) this._onConnectionState(pc.connectionState);
    };
    if (this.stream) {
      for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    }
    return pc;
  }

  /** Close the current connection and open the next attempt's. */
  _replace(attempt) {
    this._disarm();
    const old = this.pc;
    this.attempt = attempt;
    this.pc = this._connect();
    this._drop(old);
    this.onRestart(attempt);
  }

  _drop(pc) {
    pc.ontrack = null;
    pc.onicecandidate = null;
    pc.oniceconnectionstatechange = null;
    pc.onconnectionstatechange = null;
    try {
      pc.close();
    } catch (err) {
      /* already closed */
    }
  }

  /** True when `pc` is no longer the connection in use (replaced, or the call closed). */
  _stale(pc) {
    return this.closed || pc !== this.pc;
  }

  // ---------------------------------------------------------------- losing a connection

  _onConnectionState(state) {
    if (state === 'connected') {
      this._disarm();
    } else if (state === 'failed') {
      this._lost();
    } else if (state === 'disconnected') {
      this._arm('grace', DISCONNECTED_GRACE_MS);
    }
  }

  /** The current connection is lost: the offerer restarts once, the answerer waits for that; then give up. */
  _lost() {
    if (this.closed || this.failed) return;
    this._disarm();
    if (this.attempt >= MAX_ATTEMPT) {
      this._giveUp();
    } else if (this.role === 'offerer') {
      // at once, so that the old connection's later events and signals are already stale; and a step still
      // pending on the old connection (a closed one may never settle it) must not hold up the new offer
      this._replace(this.attempt + 1);
      this.chain = Promise.resolve();
      this.offer();
    } else {
      this._arm('restart_wait', RESTART_WAIT_MS);
    }
  }

  _giveUp() {
    if (this.closed || this.failed) return;
    this._disarm();
    this.failed = true;
    this.onFailed();
  }

  _arm(kind, ms) {
    this._disarm();
    const pc = this.pc;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this._stale(pc)) return;
      if (kind === 'restart_wait') this._giveUp();
      else if (pc.connectionState !== 'connected') this._lost();
    }, ms);
  }

  _disarm() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  // ---------------------------------------------------------------- signals

  _enqueue(step) {
    const run = this.chain.then(() => (this.closed ? undefined : step()));
    this.chain = run.catch((err) => {
      if (!this.closed) console.error('vw: WebRTC step failed', err);
    });
    return run;
  }

  _send(payload) {
    if (this.attempt > 0) payload.attempt = this.attempt;
    this.onSignal(payload);
  }

  _sendDescription(pc) {
    const d = pc.localDescription;
    if (d) this._send({ description: { type: d.type, sdp: d.sdp } });
  }

  async _apply(msg) {
    if (!msg) return;
    const attempt = Number.isInteger(msg.attempt) ? msg.attempt : 0;
    if (attempt < this.attempt) return; // of a connection already replaced
    if (attempt > this.attempt) {
      if (this.role !== 'answerer' || !msg.description || msg.description.type !== 'offer') {
        console.warn('vw: signal of an attempt that has not started, ignored', msg);
        return;
      }
      this._replace(attempt); // the offerer restarts: answer on a new connection
    }
    const pc = this.pc;
    if (msg.description) {
      await pc.setRemoteDescription(msg.description);
      if (this._stale(pc)) return;
      if (msg.description.type === 'offer') {
        const answer = await pc.createAnswer();
        if (this._stale(pc)) return;
        await pc.setLocalDescription(answer);
        if (this._stale(pc)) return;
        this._sendDescription(pc);
        this._arm('connect', CONNECT_TIMEOUT_MS);
      }
      const pending = pc.vwPending;
      pc.vwPending = [];
      for (const c of pending) await this._addCandidate(pc, c);
    } else if (msg.candidate) {
      if (!pc.remoteDescription) pc.vwPending.push(msg.candidate);
      else await this._addCandidate(pc, msg.candidate);
    }
  }

  async _addCandidate(pc, c) {
    try {
      if (!c.candidate) {
        // "" marks the end of the other side's candidates
        if (c.sdpMid == null && c.sdpMLineIndex == null) await pc.addIceCandidate();
        else await pc.addIceCandidate(c);
      } else {
        await pc.addIceCandidate(c);
      }
    } catch (err) {
      if (!this._stale(pc)) console.warn('vw: cannot add ICE candidate', c, err);
    }
  }
}

/** RTCIceCandidate.toJSON() without null members (the server's schema takes strings or nothing). */
function candidateInit(c) {
  const json = typeof c.toJSON === 'function' ? c.toJSON() : c;
  const out = { candidate: json.candidate };
  if (json.sdpMid != null) out.sdpMid = json.sdpMid;
  if (json.sdpMLineIndex != null) out.sdpMLineIndex = json.sdpMLineIndex;
  if (json.usernameFragment != null) out.usernameFragment = json.usernameFragment;
  return out;
}
