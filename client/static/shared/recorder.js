/*
 * Virtual Windows: a participant's send-only connection to the server's recorder.
 *
 * When `matched` says `recording: true`, the kiosk and the clerk console send
 * the same camera and microphone tracks to the recorder as well as to each
 * other. The recorder does not trickle ICE, so the offer goes out once its
 * candidates are gathered: `recorder_offer {call_id, sdp}`, answered in the ack.
 * VP8 and Opus are preferred: the recorder stores the frames as received.
 */

const GATHER_TIMEOUT_MS = 3000;
const PREFERRED = { video: 'video/vp8', audio: 'audio/opus' };

function preferCodec(transceiver, kind) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpSender || !RTCRtpSender.getCapabilities) return;
  const caps = RTCRtpSender.getCapabilities(kind);
  if (!caps) return;
  const wanted = caps.codecs.filter((c) => c.mimeType.toLowerCase() === PREFERRED[kind]);
  if (!wanted.length) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== PREFERRED[kind]);
  try {
    transceiver.setCodecPreferences(wanted.concat(rest));
  } catch (err) {
    console.warn('vw: recorder codec preference refused', err);
  }
}

function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_TIMEOUT_MS); // send what we have: host candidates come first
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

export class RecorderLink {
  /**
   * @param {object} options
   * @param {string} options.callId
   * @param {MediaStream} options.stream        the camera and microphone already sent to the other side
   * @param {function(string, object): Promise<object>} options.send  emit with ack ({ok, ...} or {ok:false, error})
   * @param {function(string, string=)} options.onState  'connecting' | 'recording' | 'failed' (with a reason)
   */
  constructor(options) {
    this.callId = options.callId;
    this.stream = options.stream;
    this.send = options.send;
    this.onState = options.onState || function () {};
    this.pc = null;
    this.closed = false;
  }

  async start() {
    if (!this.stream) {
      this.onState('failed', 'no camera stream');
      return;
    }
    const pc = (this.pc = new RTCPeerConnection({ iceServers: [] }));
    pc.onconnectionstatechange = () => {
      if (this.closed) return;
      if (pc.connectionState === 'connected') this.onState('recording');
      else if (pc.connectionState === 'failed') this.onState('failed', 'the connection to the recorder failed');
    };
    for (const track of this.stream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [this.stream] });
      preferCodec(transceiver, track.kind);
    }
    this.onState('connecting');
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (this.closed) return;
      const answer = await this.send('recorder_offer', { call_id: this.callId, sdp: pc.localDescription.sdp });
      if (this.closed) return;
      if (!answer.ok) {
        this.onState('failed', (answer.error && answer.error.message) || 'refused');
        return;
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    } catch (err) {
      if (!this.closed) this.onState('failed', String((err && err.message) || err));
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    if (this.pc) this.pc.close(); // the tracks stay: they belong to the call
  }
}
