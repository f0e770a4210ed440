"""The brokers a session may go to: one endpoint, or the endpoints of a
replicated group (comma-separated, or a list), and leaders they name. A
broker of a group that does not lead answers ERROR code "leader", naming
the leader: the session goes there at once. When the broker of a session
goes away, or refuses the connection, the next one is tried at once."""
import struct

import zmq

WATCHED = zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED
NO_LEADER_YET = 0.1  # s before the next broker, while the group elects one
NO_WELCOME = 1.0     # s a broker of a group has to welcome a session


class Brokers:
    def __init__(self, endpoint):
        parts = endpoint.split(",") if isinstance(endpoint, str) else list(endpoint)
        self.endpoints = [e.strip() for e in parts if e.strip()]
        if not self.endpoints:
            raise ValueError("no broker endpoint given")
        self.current = 0
        self.reopen_at = None  # when to open the next session, or None

    def __str__(self):
        return ",".join(self.endpoints)

    @property
    def endpoint(self):
        """The one the session is with (or goes to next)."""
        return self.endpoints[self.current]

    @property
    def group(self):
        return len(self.endpoints) > 1

    def next(self):
        self.current = (self.current + 1) % len(self.endpoints)

    def opened(self):
        self.reopen_at = None

    def redirect(self, named, now):
        """After ERROR "leader" naming the leader's endpoint (or None while
        none is elected): True when the next session opens now (at the
        leader); else it opens with the next broker soon (due)."""
        if named and named != self.endpoint:
            if named not in self.endpoints:
                self.endpoints.append(named)
            self.current = self.endpoints.index(named)
            return True
        self.next()
        self.reopen_at = now + NO_LEADER_YET
        return False

    def due(self, now, welcomed, last_heard, silence):
        """Whether a new session should open now, and with which broker:
        the next one a redirect chose, the next of a group that does not
        welcome within NO_WELCOME, or (silent for silence seconds) the
        next of a group or the same lone broker."""
        if self.reopen_at is not None:
            return now >= self.reopen_at
        if not welcomed and self.group and now - last_heard > NO_WELCOME:
            self.next()  # this one is away: the next, without backing off
            return True
        if now - last_heard > silence:
            if self.group:
                self.next()
            return True
        return False

    def wait(self, now, welcomed, seconds):
        """seconds, or less when a session is due sooner."""
        if self.reopen_at is not None:
            return max(0.0, min(seconds, self.reopen_at - now))
        if not welcomed and self.group:
            return min(seconds, NO_WELCOME)
        return seconds

    def watch(self, sock):
        """A monitor of sock's connection, for a group's session; or None."""
        return sock.get_monitor_socket(WATCHED) if self.group else None

    @staticmethod
    def gone(frames, welcomed):
        """Whether a monitor's event means the session's broker is away:
        it disconnected, or (before WELCOME) the connection was refused."""
        event = struct.unpack("<H", frames[0][:2])[0] if frames and len(frames[0]) >= 2 else 0
        return event == zmq.EVENT_DISCONNECTED or not welcomed

    @staticmethod
    def unwatch(sock, monitor):
        if monitor is not None:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
            monitor.close(linger=0)
