/*
 * Virtual Windows: local camera and microphone streams and the <video> elements that show streams.
 */

export function stopStream(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) {
    try {
      track.stop();
    } catch (err) {
      /* already stopped */
    }
  }
}

/** Show a MediaStream in a <video>; null clears it. */
export function attachStream(video, stream) {
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
}
