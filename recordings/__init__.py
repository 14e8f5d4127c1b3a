"""Server-side recording of calls: each participant's VP8 and Opus, written as received (no transcoding).

What the server uses:

- :class:`recordings.workers.RecorderPool` — recorder peers in worker
  processes: ``start()``, ``answer(call_id, participant, offer_sdp)``,
  ``stop_call(call_id)``, ``close()``;
- :class:`recordings.info.RecordingInfo` — what a finished recording reports
  (call, participant, start, duration, size, SHA-256, codecs, frames);
- :func:`recordings.finalize.finalize` / :func:`recordings.finalize.finalize_pending`
  — turn part files into finished WebM files (``RecorderPool.start`` calls
  ``finalize_pending`` itself).

Inside: :mod:`recordings.recorder` (the recorder peer, in process),
:mod:`recordings.tap` (the only module touching aiortc internals: encoded
frames out of the RTP receiver), :mod:`recordings.track` (keyframes and
timestamps per track), :mod:`recordings.writer` (crash-safe part files),
:mod:`recordings.files` (layout and locks), :mod:`recordings.bitstream`,
:mod:`recordings.protocol` and :mod:`recordings.worker` (the worker process).
"""
