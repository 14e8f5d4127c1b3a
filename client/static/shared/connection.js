/*
 * Virtual Windows: a page's Socket.IO connection to its namespace (/kiosk or /clerk), as docs/protocol.md
 * describes it, shared by the kiosk and the clerk console.
 *
 * The connection sorts what Socket.IO reports into what a page must show, through `hooks`:
 *   online()            connected (the server's `welcome` follows)
 *   retrying(cause)     not connected, and trying again: "network" (a connect attempt failed, Socket.IO
 *                       retries), "refused" (the server refused for a reason other than the token: tried
 *                       again after RETRY_REFUSED_MS), "dropped" (an open connection was lost, Socket.IO
 *                       reconnects)
 *   unauthorized()      the server refused the token: no retry
 *   replaced()          the server closed the connection (the same kiosk or clerk connected elsewhere): no
 *                       retry until reconnect()
 *   closed()            this page closed it (close())
 * send() emits a client event on it with an acknowledgement.
 */

const ACK_TIMEOUT_MS = 15 * 1000;
const RETRY_REFUSED_MS = 10 * 1000; // a refusal other than "unauthorized": try again after this

/** The vendored Socket.IO client (/static/vendor/socket.io.min.js, a classic script before the modules). */
export function socketIoLoaded() {
  return typeof window.io === 'function';
}

/**
 * Was this connect_error the server refusing the token? A refusal from the
 * server (as opposed to a network error) leaves the socket inactive: Socket.IO
 * does not retry it by itself.
 */
export function isUnauthorized(err) {
  if (!err) return false;
  const data = err.data;
  if (data && typeof data === 'object' && data.code === 'unauthorized') return true;
  return /unauthori[sz]ed/i.test(String(err.message || ''));
}

/**
 * Emit `event` on `connection` with an acknowledgement (the protocol requires one for every
 * client event) and resolve to the server's answer: `{ok: true, ...}` or
 * `{ok: false, error: {code, message}}`. A missing answer becomes the error
 * code "timeout"; no connection (none yet, or closed) the code "offline". Never rejects.
 */
export function send(connection, event, payload) {
  return new Promise((resolve) => {
    if (!connection || connection.isClosed) {
      resolve({ ok: false, error: { code: 'offline', message: 'not connected' } });
      return;
    }
    connection.socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, answer) => {
      if (err) {
        resolve({ ok: false, error: { code: 'timeout', message: 'the server did not answer in time' } });
      } else if (answer && typeof answer === 'object' && answer.ok === true) {
        resolve(answer);
      } else {
        const error = (answer && answer.error) || { code: 'internal_error', message: 'malformed answer' };
        resolve({ ok: false, error: { code: String(error.code || 'internal_error'), message: String(error.message || '') } });
      }
    });
  });
}

export class Connection {
  /**
   * Connect to `namespace` at once.
   * @param {string} namespace         "/kiosk" or "/clerk"
   * @param {string|null} token        the device or clerk token; null sends none (a clerk logged in through
   *                                   /login: the session cookie goes with the handshake)
   * @param {object} hooks             online, retrying, unauthorized, replaced, closed (see above; each optional)
   * @param {object} events            the server's events: name -> handler(msg)
   */
  constructor(namespace, token, hooks, events) {
    const noop = () => {};
    this.hooks = Object.assign({ online: noop, retrying: noop, unauthorized: noop, replaced: noop, closed: noop }, hooks);
    this.isClosed = false;
    // WebSocket only: behind a proxy in front of several nodes, no request of a connection may reach another node
    // (long-polling would need sticky sessions); a lost WebSocket reconnects, to whichever node the proxy picks
    const options = { transports: ['websocket'] };
    if (token) options.auth = { token };
    const socket = (this.socket = window.io(namespace, options));

    socket.on('connect', () => this.hooks.online());
    socket.on('connect_error', (err) => {
      if (socket.active) {
        this.hooks.retrying('network'); // a network problem: Socket.IO retries by itself
        return;
      }
      if (isUnauthorized(err)) {
        this.hooks.unauthorized();
        return;
      }
      // refused for another reason: try again a little later
      console.warn('vw: connection refused', err && err.message, err && err.data);
      this.hooks.retrying('refused');
      setTimeout(() => {
        if (!this.isClosed && !socket.connected && !socket.active) socket.connect();
      }, RETRY_REFUSED_MS);
    });
    socket.on('disconnect', (reason) => {
      if (reason === 'io server disconnect') this.hooks.replaced();
      else if (reason === 'io client disconnect') this.hooks.closed();
      else this.hooks.retrying('dropped');
    });
    for (const [event, handler] of Object.entries(events || {})) socket.on(event, handler);
  }

  get connected() {
    return !this.isClosed && this.socket.connected;
  }

  /** Connect again after replaced(). */
  reconnect() {
    if (!this.isClosed) this.socket.connect();
  }

  /** Disconnect for good (signing out, logging out): closed() is called, sending answers "offline". */
  close() {
    if (this.isClosed) return;
    this.isClosed = true;
    this.socket.disconnect();
  }
}
