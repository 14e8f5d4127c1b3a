"""Scripts run in the pages for tests only (the pages are not changed).

:data:`BREAK_FIRST_PEERS_JS` subclasses whatever ``window.RTCPeerConnection`` is when it runs (so it composes
with :data:`tests.browser.pages.TRACK_PEERS_JS` in either order) and is installed with :func:`install` before
the page is opened; :data:`SELECTED_PAIR_JS` reads getStats.
"""

from __future__ import annotations

import json
from typing import Any

from playwright.async_api import Page

# The first `broken` RTCPeerConnections of the page get every remote candidate moved to 127.0.0.1:`port`, a UDP
# socket that never answers (TCP candidates are dropped, as are any candidates in the remote SDP): the checks go
# unanswered and Chrome's ICE fails for real, on both sides, since each side only ever checks the black hole.
# `window.__vwBroken` keeps the connectionState history of each broken connection.
BREAK_FIRST_PEERS_JS = """
({port, broken}) => {
  const Base = window.RTCPeerConnection;
  let made = 0;
  const states = (window.__vwBroken = []);
  const toBlackHole = (text) => {
    const parts = String(text).split(' ');
    if (parts.length < 8 || parts[2].toLowerCase() !== 'udp') return null;
    parts[4] = '127.0.0.1';
    parts[5] = String(port);
    return parts.join(' ');
  };
  class BrokenPeerConnection extends Base {
    constructor(...args) {
      super(...args);
      this.vwBroken = made++ < broken;
      if (this.vwBroken) {
        const history = [];
        states.push(history);
        this.addEventListener('connectionstatechange', () => history.push(this.connectionState));
      }
    }
    addIceCandidate(candidate, ...rest) {
      if (this.vwBroken && candidate && candidate.candidate) {
        const json = typeof candidate.toJSON === 'function' ? candidate.toJSON() : candidate;
        const moved = toBlackHole(json.candidate);
        if (!moved) return Promise.resolve();
        candidate = Object.assign({}, json, { candidate: moved });
      }
      return super.addIceCandidate(candidate, ...rest);
    }
    setRemoteDescription(description) {
      if (this.vwBroken && description && description.sdp) {
        description = { type: description.type, sdp: description.sdp.replace(/^a=candidate:.*\\r?\\n/gm, '') };
      }
      return super.setRemoteDescription(description);
    }
  }
  window.RTCPeerConnection = BrokenPeerConnection;
}
"""

# The selected candidate pair of the page's newest open connection, from getStats.
SELECTED_PAIR_JS = """
async () => {
  const open = (window.__vwPeers || []).filter((pc) => pc.connectionState !== 'closed');
  const pc = open[open.length - 1];
  if (!pc) return null;
  const byId = new Map();
  const stats = await pc.getStats();
  stats.forEach((r) => byId.set(r.id, r));
  for (const r of byId.values()) {
    if (r.type !== 'transport' || !r.selectedCandidatePairId) continue;
    const pair = byId.get(r.selectedCandidatePairId);
    const local = pair && byId.get(pair.localCandidateId);
    const remote = pair && byId.get(pair.remoteCandidateId);
    return {
      state: pair ? pair.state : '', nominated: !!(pair && pair.nominated),
      local: local ? { address: local.address || local.ip, port: local.port, type: local.candidateType } : null,
      remote: remote ? { address: remote.address || remote.ip, port: remote.port, type: remote.candidateType } : null,
    };
  }
  return null;
}
"""


async def install(page: Page, script: str, arg: Any = None) -> None:
    """Run ``script`` (a function expression) with ``arg`` in every document of ``page`` before its own scripts."""
    await page.add_init_script(script=f"({script})({json.dumps(arg)});")
