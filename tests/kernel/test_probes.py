"""jupyter_client probes of the kernel's behaviour under load, interrupts, comms and bad input.
One kernel serves the class (startup and the first TypeScript compile take ~3 s); the tests that end
a kernel (restart, process.exit) start their own."""
import json
import os
import threading
import time
import unittest
import uuid

import zmq
from jupyter_client.session import Session

from kernel_helpers import (control_reply, drain, execute, hb_ping, iopub_until_idle, shell_reply, start,
                            stream_text)

HAS_NATIVE_SPIN = None  # decided once by a probe cell


class Probes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.log_path = os.path.join(os.environ.get("MOESCOPE_TEST_TMP", "/tmp"), f"kernel-{uuid.uuid4().hex}.log")
        cls.log = open(cls.log_path, "w")
        cls.km, cls.kc = start(env={"MOESCOPE_MAX_MESSAGE_BYTES": str(1 << 20)}, stderr=cls.log)
        reply, msgs = execute(cls.kc, 'import * as moescope from "moescope"; typeof (moescope as any).nativeSpin')
        cls.has_spin = any("function" in json.dumps(m["content"]) for m in msgs if m["msg_type"] == "execute_result")

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel(now=False)
        cls.log.close()

    def setUp(self):
        drain(self.kc, 0.05)

    def need_spin(self):
        if not self.has_spin:
            self.skipTest("the engine does not export nativeSpin yet (engine/src/index.ts)")

    def assert_alive(self):
        reply, msgs = execute(self.kc, "40 + 2")
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertIn("42", json.dumps([m["content"] for m in msgs if m["msg_type"] == "execute_result"]))

    # ---- output ------------------------------------------------------------------------------
    def test_burst_10000_lines_whole_in_order_idle_last(self):
        t = time.time()
        msg_id = self.kc.execute("for (let i = 0; i < 10000; i++) console.log(i)")
        reply = shell_reply(self.kc, msg_id)
        msgs = iopub_until_idle(self.kc, msg_id)
        took = time.time() - t
        lines = stream_text(msgs).splitlines()
        self.assertEqual(lines, [str(i) for i in range(10000)])
        types = [m["msg_type"] for m in msgs]
        self.assertEqual(types[-1], "status")
        self.assertEqual(reply["content"]["status"], "ok")
        print(f"\n    10,000-line burst: {took:.2f}s, {types.count('stream')} stream messages", end="")

    def test_earlier_cell_variables_in_object_shorthand(self):
        execute(self.kc, "const shortA = 1; let shortB = 'x';")
        reply, msgs = execute(self.kc, "JSON.stringify({ shortA, shortB })")
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn('{\\"shortA\\":1,\\"shortB\\":\\"x\\"}', json.dumps([m["content"] for m in msgs if m["msg_type"] == "execute_result"]))

    def test_fd_level_output_reaches_the_notebook(self):
        # What native printf does: write(2) on fd 1/2, below JavaScript; a child with inherited stdio does the same.
        code = 'import { execSync } from "child_process"; execSync("echo from-fd-1; echo from-fd-2 1>&2", { stdio: "inherit" }); undefined'
        msg_id = self.kc.execute(code)
        shell_reply(self.kc, msg_id)
        msgs = iopub_until_idle(self.kc, msg_id)
        text = stream_text(msgs, "stdout") + "|" + stream_text(msgs, "stderr")
        deadline = time.time() + 3
        while ("from-fd-1" not in text or "from-fd-2" not in text) and time.time() < deadline:
            try:
                m = self.kc.get_iopub_msg(timeout=0.2)
            except Exception:
                continue
            if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id:
                text += m["content"]["name"] + ":" + m["content"]["text"]
        self.assertIn("from-fd-1", text)
        self.assertIn("from-fd-2", text)

    def test_update_display_data(self):
        code = 'import { display } from "moescope"; const h = display("first"); h.update({ n: 2 }); undefined'
        reply, msgs = execute(self.kc, code)
        self.assertEqual(reply["content"]["status"], "ok")
        d = [m for m in msgs if m["msg_type"] == "display_data"]
        u = [m for m in msgs if m["msg_type"] == "update_display_data"]
        self.assertEqual(len(d), 1)
        self.assertEqual(len(u), 1)
        self.assertEqual(d[0]["content"]["data"]["text/plain"], "first")
        self.assertEqual(u[0]["content"]["transient"]["display_id"], d[0]["content"]["transient"]["display_id"])
        self.assertEqual(u[0]["content"]["data"]["text/plain"], "{ n: 2 }")

    def test_display_protocol_bundle_with_metadata(self):
        code = ('import { display, MIMEBUNDLE } from "moescope";'
                'class Fig { [MIMEBUNDLE]() { return { data: { "text/html": "<i>f</i>", "text/plain": "Fig" }, metadata: { "text/html": { isolated: true } } }; } }'
                'display(new Fig()); new Fig()')
        reply, msgs = execute(self.kc, code)
        d = [m for m in msgs if m["msg_type"] == "display_data"][0]["content"]
        r = [m for m in msgs if m["msg_type"] == "execute_result"][0]["content"]
        for c in (d, r):
            self.assertEqual(c["data"]["text/html"], "<i>f</i>")
            self.assertEqual(c["metadata"], {"text/html": {"isolated": True}})

    # ---- interrupts and the heartbeat -------------------------------------------------------------
    def wait_started(self, msg_id, timeout=30):
        deadline = time.time() + timeout
        while True:
            m = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.time()))
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "execute_input":
                return

    def interrupt(self, how):
        if how == "signal":
            self.km.interrupt_kernel()
        else:
            m = self.kc.session.msg("interrupt_request", {})
            self.kc.control_channel.send(m)
            control_reply(self.kc, m["header"]["msg_id"], timeout=5)

    def interrupt_after(self, code, delay, how):
        """Interrupts once the cell runs; an interrupt that lands while the cell is still being
        compiled is lost (documented), so it is repeated, and the time is taken from the last one."""
        msg_id = self.kc.execute(code)
        self.wait_started(msg_id)
        time.sleep(delay)
        for attempt in range(5):
            t = time.time()
            self.interrupt(how)
            try:
                reply = shell_reply(self.kc, msg_id, timeout=2)
                break
            except Exception:
                continue
        took = time.time() - t
        iopub_until_idle(self.kc, msg_id)
        return reply["content"], took

    def test_interrupt_async_await_signal_and_message(self):
        for how in ("signal", "message"):
            with self.subTest(how=how):
                c, took = self.interrupt_after("await new Promise((r) => setTimeout(r, 20000))", 1.0, how)
                self.assertEqual(c["status"], "error")
                self.assertEqual(c["ename"], "KeyboardInterrupt")
                self.assertLess(took, 0.5)
                self.assert_alive()

    def test_interrupt_long_native_call(self):
        self.need_spin()
        execute(self.kc, "let keep = 7")
        for how in ("signal", "message"):
            with self.subTest(how=how):
                c, took = self.interrupt_after('import { nativeSpin } from "moescope"; await nativeSpin(20000)', 1.0, how)
                self.assertEqual(c["ename"], "KeyboardInterrupt")
                self.assertLess(took, 0.5)
                print(f"\n    native interrupt ({how}): {took * 1000:.0f} ms", end="")
                reply, msgs = execute(self.kc, "keep * 6")
                self.assertIn("42", json.dumps([m["content"] for m in msgs]))

    def test_interrupt_sync_js_loop(self):
        for how in ("signal", "message"):
            with self.subTest(how=how):
                c, took = self.interrupt_after("while (true) {}", 1.0, how)
                self.assertEqual(c["ename"], "KeyboardInterrupt")
                self.assertLess(took, 1.0)
                self.assert_alive()

    def test_interrupt_while_the_cell_compiles(self):
        # SIGINT as soon as execute_input is out: it lands while TypeScript compiles the cell (the
        # main thread is busy, breakOnSigint not yet armed) and must still stop the loop that follows.
        big = ",".join(str(j) for j in range(3000))
        for i in range(2):
            mid = self.kc.execute(f"let compiled{i} = [{big}].length; while (true) {{}}")
            self.wait_started(mid)
            self.km.interrupt_kernel()
            self.assertEqual(shell_reply(self.kc, mid, timeout=10)["content"]["ename"], "KeyboardInterrupt")
            iopub_until_idle(self.kc, mid)
        self.assert_alive()

    def test_interrupt_hits_only_the_running_cell(self):
        # jupyter_client signals the process group and the launcher forwards too: the duplicate
        # SIGINT must not interrupt the cell queued behind the interrupted one.
        first = self.kc.execute("while (true) {}", stop_on_error=False)
        second = self.kc.execute('"second ran"', stop_on_error=False)
        self.wait_started(first)
        time.sleep(1.0)
        self.km.interrupt_kernel()
        self.assertEqual(shell_reply(self.kc, first, timeout=10)["content"]["ename"], "KeyboardInterrupt")
        self.assertEqual(shell_reply(self.kc, second, timeout=10)["content"]["status"], "ok")

    def heartbeat_during(self, code, seconds):
        msg_id = self.kc.execute(code)
        time.sleep(0.5)
        pings = []
        while time.time() - 0.5 < time.time() and len(pings) < int(seconds * 2) - 2:
            pings.append(hb_ping(self.km, timeout=0.5))
            time.sleep(0.25)
        reply = shell_reply(self.kc, msg_id, timeout=seconds + 10)
        iopub_until_idle(self.kc, msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        return pings

    def test_heartbeat_during_sync_js_loop(self):
        pings = self.heartbeat_during("const until = Date.now() + 4000; while (Date.now() < until) {}", 4)
        self.assertTrue(pings and all(p is not None for p in pings), pings)
        print(f"\n    heartbeat during a blocked main thread: max {max(pings) * 1000:.1f} ms", end="")

    def test_heartbeat_during_5s_native_call(self):
        self.need_spin()
        pings = self.heartbeat_during('import { nativeSpin } from "moescope"; await nativeSpin(5000)', 5)
        self.assertTrue(pings and all(p is not None for p in pings), pings)

    # ---- comms -------------------------------------------------------------------------------------
    def test_comm_round_trip_binary_both_directions(self):
        setup = ('import { registerCommTarget } from "moescope";'
                 'registerCommTarget("probe.echo", (comm, open) => {'
                 '  comm.send({ opened: open.data }, [new Uint8Array([9, 8, 7])]);'
                 '  comm.onMsg((m) => comm.send({ echo: m.data, sizes: m.buffers.map((b) => b.byteLength) },'
                 '                              m.buffers.map((b) => Uint8Array.from(b).reverse())));'
                 '  comm.onClose(() => console.log("closed by client"));'
                 '});')
        reply, _ = execute(self.kc, setup)
        self.assertEqual(reply["content"]["status"], "ok")
        s = self.kc.session
        comm_id = uuid.uuid4().hex
        sock = self.kc.shell_channel.socket
        m = s.send(sock, "comm_open", {"comm_id": comm_id, "target_name": "probe.echo", "data": {"x": 1}})
        out = iopub_until_idle(self.kc, m["header"]["msg_id"])
        sent = [o for o in out if o["msg_type"] == "comm_msg"][0]
        self.assertEqual(sent["content"]["data"], {"opened": {"x": 1}})
        self.assertEqual(bytes(sent["buffers"][0]), b"\x09\x08\x07")
        payload = bytes(range(256)) * 4
        m = s.send(sock, "comm_msg", {"comm_id": comm_id, "data": {"hello": "kernel"}}, buffers=[payload, b"\x00\xff"])
        out = iopub_until_idle(self.kc, m["header"]["msg_id"])
        echo = [o for o in out if o["msg_type"] == "comm_msg"][0]
        self.assertEqual(echo["content"]["data"], {"echo": {"hello": "kernel"}, "sizes": [1024, 2]})
        self.assertEqual(bytes(echo["buffers"][0]), payload[::-1])
        self.assertEqual(bytes(echo["buffers"][1]), b"\xff\x00")
        # comm_info lists it; closing it runs the kernel-side close handler
        m = s.send(sock, "comm_info_request", {"target_name": "probe.echo"})
        info = shell_reply(self.kc, m["header"]["msg_id"])
        self.assertEqual(info["msg_type"], "comm_info_reply")
        self.assertIn(comm_id, info["content"]["comms"])
        m = s.send(sock, "comm_close", {"comm_id": comm_id, "data": {}})
        out = iopub_until_idle(self.kc, m["header"]["msg_id"])
        self.assertIn("closed by client", stream_text(out))

    def test_comm_opened_by_kernel_and_unknown_target(self):
        reply, msgs = execute(self.kc, 'import { openComm } from "moescope"; openComm("client.side", { a: 1 }, [new Float32Array([1.5, -2]).buffer ? new Uint8Array(new Float32Array([1.5, -2]).buffer) : new Uint8Array()]); undefined')
        opened = [m for m in msgs if m["msg_type"] == "comm_open"][0]
        self.assertEqual(opened["content"]["target_name"], "client.side")
        self.assertEqual(len(bytes(opened["buffers"][0])), 8)
        m = self.kc.session.send(self.kc.shell_channel.socket, "comm_open", {"comm_id": "nope", "target_name": "no.such.target", "data": {}})
        out = iopub_until_idle(self.kc, m["header"]["msg_id"])
        self.assertIn("comm_close", [o["msg_type"] for o in out])

    # ---- stop_on_error ---------------------------------------------------------------------------
    def queue_three(self, stop_on_error):
        first = self.kc.execute('await new Promise((r) => setTimeout(r, 300)); throw new Error("first fails")', stop_on_error=stop_on_error)
        second = self.kc.execute("1", stop_on_error=stop_on_error)
        third = self.kc.execute("2", stop_on_error=stop_on_error)
        return [shell_reply(self.kc, i)["content"]["status"] for i in (first, second, third)]

    def test_stop_on_error_aborts_only_what_was_queued(self):
        self.assertEqual(self.queue_three(True), ["error", "aborted", "aborted"])
        time.sleep(0.2)
        self.assert_alive()  # sent after the error: not aborted

    def test_stop_on_error_false_runs_the_rest(self):
        self.assertEqual(self.queue_three(False), ["error", "ok", "ok"])

    # ---- bad input -------------------------------------------------------------------------------
    def raw_shell(self):
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"{self.km.transport}://{self.km.ip}:{self.km.shell_port}")
        time.sleep(0.2)
        return sock

    def test_bad_hmac_is_ignored_and_logged(self):
        sock = self.raw_shell()
        bad = Session(key=b"not-the-key", username="attacker")
        bad.send(sock, "execute_request", {"code": 'console.log("SHOULD NOT RUN")', "silent": False})
        self.assertEqual(sock.poll(1000), 0, "a badly signed request was answered")
        sock.close()
        self.assert_alive()
        self.log.flush()
        with open(self.log_path) as f:
            self.assertIn("bad signature", f.read())

    def test_malformed_and_unknown_messages(self):
        sock = self.raw_shell()
        s = self.kc.session
        sock.send_multipart([b"garbage", b"without a delimiter"])
        hdr = json.dumps({"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "session": s.session,
                          "username": "u", "date": "2026-01-01T00:00:00Z", "version": "5.3"}).encode()
        par, md = b"{}", b"{}"
        body = [hdr, par, md, b"{not json"]
        sock.send_multipart([b"<IDS|MSG>", s.sign(body)] + body)
        body = [b'{"msg_id": "x"}', par, md, b"{}"]  # no msg_type
        sock.send_multipart([b"<IDS|MSG>", s.sign(body)] + body)
        body = [b"[1, 2]", par, md, b"{}"]
        sock.send_multipart([b"<IDS|MSG>", s.sign(body)] + body)
        self.assertEqual(sock.poll(500), 0)
        m = s.send(sock, "frobnicate_request", {})
        self.assertEqual(sock.poll(500), 0)  # unknown types are logged, not answered (ipykernel does the same)
        sock.close()
        self.assert_alive()

    def test_oversized_message_refused(self):
        m = self.kc.session.msg("execute_request", {"code": "// " + "x" * (2 << 20), "silent": False, "store_history": True,
                                                     "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        self.kc.shell_channel.send(m)
        reply = shell_reply(self.kc, m["header"]["msg_id"], timeout=10)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "MessageTooLarge")
        self.assert_alive()

    def test_sync_and_async_throws(self):
        for code, ename in [('throw new RangeError("sync")', "RangeError"),
                            ('await Promise.resolve(); throw new SyntaxError("async")', "SyntaxError"),
                            ('throw "a string"', "Error"),
                            ('let n: number = "x"', "TSError")]:
            with self.subTest(code=code):
                reply, msgs = execute(self.kc, code)
                self.assertEqual(reply["content"]["status"], "error")
                self.assertEqual(reply["content"]["ename"], ename)
                err = [m for m in msgs if m["msg_type"] == "error"]
                self.assertEqual(len(err), 1)
                self.assertEqual(err[0]["content"]["ename"], ename)
        self.assert_alive()

    def test_late_rejection_and_exception_after_cell_end(self):
        reply, _ = execute(self.kc, 'setTimeout(() => { Promise.reject(new Error("late rejection")); }, 100);'
                                    'setTimeout(() => { throw new Error("late throw"); }, 150); 1')
        self.assertEqual(reply["content"]["status"], "ok")
        text, deadline = "", time.time() + 5
        while time.time() < deadline and not ("late rejection" in text and "late throw" in text):
            try:
                m = self.kc.get_iopub_msg(timeout=0.5)
            except Exception:
                continue
            if m["msg_type"] == "stream":
                text += m["content"]["text"]
        self.assertIn("late rejection", text)
        self.assertIn("late throw", text)
        self.assert_alive()


class EndOfKernel(unittest.TestCase):
    """Probes that end a kernel: each starts its own."""

    def test_restart_via_shutdown_request(self):
        km, kc = start()
        try:
            execute(kc, "let survivor = 1")
            m = kc.session.msg("shutdown_request", {"restart": True})
            kc.control_channel.send(m)
            reply = control_reply(kc, m["header"]["msg_id"], timeout=10)
            self.assertEqual(reply["content"], {"status": "ok", "restart": True})
            deadline = time.time() + 10
            while km.is_alive() and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(km.is_alive(), "the kernel did not exit after shutdown_request")
            self.assertEqual(km.provisioner.process.returncode if km.provisioner else 0, 0)
            km.restart_kernel(now=True)
            kc.wait_for_ready(timeout=60)
            reply, msgs = execute(kc, "survivor")
            self.assertEqual(reply["content"]["ename"], "TSError")  # Cannot find name 'survivor': a fresh process
            # and the manager's own restart path (shutdown_request restart=True, then a new process)
            km.restart_kernel(now=False)
            kc.wait_for_ready(timeout=60)
            reply, _ = execute(kc, "1")
            self.assertEqual(reply["content"]["status"], "ok")
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)

    def test_kernel_ends_when_its_client_dies(self):
        # A client that dies without shutdown_request (crash, kill -9) must not leave an orphan
        # kernel holding ports and a loaded model (ipykernel's ParentPoller does the same).
        import subprocess, sys
        script = ("import os, sys; sys.path.insert(0, %r); from kernel_helpers import start, execute;"
                  "km, kc = start(); execute(kc, '1'); print(km.provisioner.process.pid, flush=True); os._exit(0)"
                  % os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120).stdout
        pid = int(out.split()[-1])
        deadline = time.time() + 10
        while time.time() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.1)
        self.assertFalse(os.path.exists(f"/proc/{pid}"), "the kernel outlived its client")

    def test_process_exit_in_a_cell_kills_and_restart_works(self):
        km, kc = start()
        try:
            mid = kc.execute('console.log("before exit"); process.exit(3)')
            deadline = time.time() + 10
            while km.is_alive() and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(km.is_alive())
            self.assertEqual(km.provisioner.process.returncode, 3)
            km.restart_kernel(now=True)
            kc.wait_for_ready(timeout=60)
            # The shell reply says the restarted kernel works. Its iopub messages may be published
            # before the client's re-subscription is live (zmq's slow joiner), so they are not awaited.
            reply = shell_reply(kc, kc.execute("1"))
            self.assertEqual(reply["content"]["status"], "ok")
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


if __name__ == "__main__":
    unittest.main()
