"""jupyter_kernel_test's conformance suite (Debian's python3-jupyter-kernel-test 0.4.5) against the
moescope kernel. Every message it sees is validated against the v5 message schema.

Not applicable, with the reason:
- test_pager (code_page_something): TypeScript has no pager; inspect_request (tested) serves help.
- invalid_code_samples: tslab's isCompleteCode answers only complete/incomplete; code that cannot
  parse is reported as "complete" and its syntax error comes back when it runs (TSError).
"""
import unittest

import jupyter_kernel_test


class MoescopeKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "moescope"
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("oops")'
    completion_samples = [
        {"text": "Math.hyp", "matches": {"hypot"}},
        {"text": "let abcdef = 1; abcd", "matches": {"abcdef"}},
        # moescope's own types resolve from a notebook folder without node_modules
        {"text": 'import { display } from "moescope"; display.mark', "matches": {"markdown"}},
        {"text": 'import { nativeSpin } from "moescope"; nativeSp', "matches": {"nativeSpin"}},
    ]
    complete_code_samples = ["1", "console.log(1)", "let x = 1;", "function f() { return 1 }"]
    incomplete_code_samples = ["function f() {", "let x = [1,", "if (true) {"]
    code_generate_error = 'throw new Error("boom")'
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "[1, 2].map((x) => x * 2)", "result": "[ 2, 4 ]"},
        {"code": '"a" + "b"', "result": "'ab'"},
    ]
    code_display_data = [
        {"code": 'import { display } from "moescope"; display.html("<b>hi</b>"); undefined', "mime": "text/html"},
        {"code": 'import { display } from "moescope"; display.markdown("**hi**"); undefined', "mime": "text/markdown"},
        {"code": 'import { display } from "moescope"; display.bundle({"image/svg+xml": "<svg/>", "text/plain": "s"}); undefined', "mime": "image/svg+xml"},
    ]
    code_history_pattern = "6*7"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "Math.max"
    code_clear_output = 'import { clearOutput } from "moescope"; clearOutput()'

    def test_pager(self):
        self.skipTest("not applicable: TypeScript has no pager; inspect_request (test_inspect) serves help")


if __name__ == "__main__":
    unittest.main()
