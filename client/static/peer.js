/*
 * Virtual Windows: one WebRTC peer connection for one call, shared by the kiosk
 * (offerer) and the clerk console (answerer). Signals (descriptions and ICE
 * candidates) go through the caller's `onSignal`, which sends them as the
 * protocol's `signal {call_id, description | candidate}` message.
 */
(function () {
  'use strict';

  const VW = (window.VW = window.VW || {});

  class CallPeer {
    /**
     * @param {object} options
     * @param {RTCIceServer[]} options.iceServers  from `matched.ice_servers`
     * @param {MediaStream|null} options.stream     local camera and microphone (null: receive only)
     * @param {function(object)} options.onSignal   called with {description} or {candidate}
     * @param {function(MediaStream)} options.onRemoteStream
     * @param {function(string)} options.onIceState  iceConnectionState after each change
     */
    constructor(options) {
      this.onSignal = options.onSignal;
      this.onRemoteStream = options.onRemoteStream || function () {};
      this.onIceState = options.onIceState || function () {};
      this.closed = false;
      this.pending = []; // remote candidates that came before the remote description
      this.chain = Promise.resolve(); // signals are applied one after the other, in order
      this.remote = null;

      const iceServers = Array.isArray(options.iceServers) ? options.iceServers : [];
      const pc = (this.pc = new RTCPeerConnection({ iceServers }));

      pc.ontrack = (ev) => {
        if (this.closed) return;
        let stream = ev.streams && ev.streams[0];
        if (!stream) {
          if (!this.remote) this.remote = new MediaStream();
          this.remote.addTrack(ev.track);
          stream = this.remote;
        }
        this.onRemoteStream(stream);
      };
      pc.onicecandidate = (ev) => {
        const c = ev.candidate;
        // null (and "") mark the end of gathering; the protocol lets us leave it out
        if (this.closed || !c || !c.candidate) return;
        this.onSignal({ candidate: candidateInit(c) });
      };
      pc.oniceconnectionstatechange = () => {
        if (!this.closed) this.onIceState(pc.iceConnectionState);
      };

      const stream = options.stream;
      if (stream) {
        for (const track of stream.getTracks()) pc.addTrack(track, stream);
      }
    }

    /** Offerer: create the offer, set it locally and send it. */
    offer() {
      return this._enqueue(async () => {
        const pc = this.pc;
        const offer = await pc.createOffer();
        if (this.closed) return;
        await pc.setLocalDescription(offer);
        if (this.closed) return;
        this._sendDescription();
      });
    }

    /** Apply a `signal` message from the other side ({description} or {candidate}). */
    handleSignal(msg) {
      return this._enqueue(() => this._apply(msg));
    }

    close() {
      if (this.closed) return;
      this.closed = true;
      const pc = this.pc;
      pc.ontrack = null;
      pc.onicecandidate = null;
      pc.oniceconnectionstatechange = null;
      try {
        pc.close();
      } catch (err) {
        /* already closed */
      }
    }

    _enqueue(step) {
      const run = this.chain.then(() => (this.closed ? undefined : step()));
      this.chain = run.catch((err) => {
        if (!this.closed) console.error('vw: WebRTC step failed', err);
      });
      return run;
    }

    _sendDescription() {
      const d = this.pc.localDescription;
      if (d) this.onSignal({ description: { type: d.type, sdp: d.sdp } });
    }

    async _apply(msg) {
      const pc = this.pc;
      if (msg && msg.description) {
        await pc.setRemoteDescription(msg.description);
        if (this.closed) return;
        if (msg.description.type === 'offer') {
          const answer = await pc.createAnswer();
          if (this.closed) return;
          await pc.setLocalDescription(answer);
          if (this.closed) return;
          this._sendDescription();
        }
        const pending = this.pending;
        this.pending = [];
        for (const c of pending) await this._addCandidate(c);
      } else if (msg && msg.candidate) {
        if (!pc.remoteDescription) this.pending.push(msg.candidate);
        else await this._addCandidate(msg.candidate);
      }
    }

    async _addCandidate(c) {
      try {
        if (!c.candidate) {
          // "" marks the end of the other side's candidates
          if (c.sdpMid == null && c.sdpMLineIndex == null) await this.pc.addIceCandidate();
          else await this.pc.addIceCandidate(c);
        } else {
          await this.pc.addIceCandidate(c);
        }
      } catch (err) {
        if (!this.closed) console.warn('vw: cannot add ICE candidate', c, err);
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

  VW.CallPeer = CallPeer;
})();
