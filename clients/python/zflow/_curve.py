"""CURVE keys from zflow's certificate files (zflow keygen: NAME holds the
public key, NAME_secret both), and from the environment zflow sets for its
actors (ZFLOW_CURVE_CERT, ZFLOW_CURVE_SERVER; docs/security.md)."""
import os
import re

_KEY = re.compile(r'^\s*(public|secret)-key\s*=\s*"([^"]{40})"\s*$', re.M)


def load(path, secret):
    """The Z85 keys of a certificate file: (public, secret or None)."""
    try:
        with open(path) as f:
            keys = dict(_KEY.findall(f.read()))
    except OSError as e:
        raise ValueError("cannot read the certificate %s: %s" % (path, e.strerror)) from None
    if "public" not in keys or (secret and "secret" not in keys):
        raise ValueError("%s is not a zflow %s certificate (zflow keygen makes them)"
                         % (path, "secret" if secret else "public"))
    return keys["public"], keys.get("secret")


def keys(curve):
    """(public, secret, server) for a socket: from curve, a pair of paths
    (this side's secret certificate, the broker's public one), or from the
    environment when curve is None; None for no CURVE."""
    if curve is None:
        cert = os.environ.get("ZFLOW_CURVE_CERT")
        if not cert:
            return None
        server = os.environ.get("ZFLOW_CURVE_SERVER")
        if not server:
            raise ValueError("ZFLOW_CURVE_CERT is set but ZFLOW_CURVE_SERVER is not: name the "
                             "broker's public certificate")
        curve = (cert, server)
    if len(curve) == 3:
        return tuple(curve)  # keys already
    public, secret = load(curve[0], True)
    return public, secret, load(curve[1], False)[0]


def apply(sock, curve_keys):
    if curve_keys:
        public, secret, server = (k.encode() if isinstance(k, str) else k for k in curve_keys)
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.curve_serverkey = server
