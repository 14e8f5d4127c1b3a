"""WebRTC helpers shared by the headless client, the recorder and the server (no dependency on any of them)."""
