"""Shared helpers for the real-client kernel tests: start the `moescope` kernelspec (installed by
run-python.sh into a temporary JUPYTER_PATH), run code, and collect the iopub messages of one request
by parent msg_id (start_new_kernel may leave extra kernel_info replies around, so nothing is matched
by position)."""
import os
import time
from queue import Empty

import zmq
from jupyter_client.manager import start_new_kernel

KERNEL = "moescope"
TIMEOUT = 30


def start(env=None, stderr=None):
    kw = {}
    if env is not None:
        kw["env"] = dict(os.environ, **env)
    if stderr is not None:
        kw["stderr"] = stderr
    return start_new_kernel(kernel_name=KERNEL, startup_timeout=60, **kw)


def shell_reply(kc, msg_id, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while True:
        m = kc.get_shell_msg(timeout=max(0.01, deadline - time.time()))
        if m["parent_header"].get("msg_id") == msg_id:
            return m


def iopub_until_idle(kc, msg_id, timeout=TIMEOUT):
    """All iopub messages whose parent is msg_id, up to and including its idle status."""
    out = []
    deadline = time.time() + timeout
    while True:
        m = kc.get_iopub_msg(timeout=max(0.01, deadline - time.time()))
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return out


def execute(kc, code, timeout=TIMEOUT, **kw):
    msg_id = kc.execute(code, **kw)
    reply = shell_reply(kc, msg_id, timeout)
    return reply, iopub_until_idle(kc, msg_id, timeout)


def stream_text(msgs, name="stdout"):
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == name)


def drain(kc, t=0.2):
    for get in (kc.get_shell_msg, kc.get_iopub_msg, kc.get_control_msg):
        while True:
            try:
                get(timeout=t)
            except Empty:
                break


def hb_ping(km, timeout=0.5):
    """One heartbeat round trip on a fresh REQ socket: seconds taken, or None if no answer."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.linger = 0
    s.connect(f"{km.transport}://{km.ip}:{km.hb_port}")
    t = time.time()
    s.send(b"ping")
    ok = s.poll(int(timeout * 1000))
    if ok:
        s.recv()
    s.close()
    return time.time() - t if ok else None


def control_reply(kc, msg_id, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while True:
        m = kc.get_control_msg(timeout=max(0.01, deadline - time.time()))
        if m["parent_header"].get("msg_id") == msg_id:
            return m
