"""`jupyter nbconvert --to notebook --execute` of every notebooks/*.ipynb (which must run clean), with
and without --allow-errors, plus a fixture with a failing middle cell: without --allow-errors the run
fails at that cell; with it (stop_on_error=False) every later cell still runs."""
import glob
import json
import os
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
JUPYTER = ["/usr/bin/python3", "-m", "nbconvert"]


def nbconvert(path, allow_errors):
    out_dir = tempfile.mkdtemp(dir=os.environ.get("MOESCOPE_TEST_TMP"))
    cmd = JUPYTER + ["--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=120",
                     "--output-dir", out_dir, path]
    if allow_errors:
        cmd.insert(-1, "--allow-errors")
    t = time.time()
    p = subprocess.run(cmd, cwd=os.path.dirname(path), capture_output=True, text=True, timeout=300)
    out = os.path.join(out_dir, os.path.basename(path))
    nb = json.load(open(out)) if os.path.exists(out) else None
    return p, nb, time.time() - t


class Notebooks(unittest.TestCase):
    def test_every_notebook_executes(self):
        paths = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
        self.assertTrue(paths)
        for path in paths:
            for allow in (False, True):
                with self.subTest(notebook=os.path.basename(path), allow_errors=allow):
                    p, nb, took = nbconvert(path, allow)
                    self.assertEqual(p.returncode, 0, p.stderr[-3000:])
                    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
                    self.assertEqual([c["execution_count"] for c in code], list(range(1, len(code) + 1)))
                    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
                    self.assertEqual(errors, [])
                    print(f"\n    {os.path.basename(path)} (allow_errors={allow}): {took:.1f}s", end="")
                    if os.path.basename(path) == "00-kernel-tour.ipynb":
                        self.check_tour(nb)

    def check_tour(self, nb):
        outs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        text = json.dumps(outs)
        self.assertIn("stdout goes to the notebook", text)
        self.assertIn('"42"', text)
        self.assertIn("Swatch(#f59e0b)", text)
        self.assertIn("step 5/5", text)  # update_display_data was applied to the stored output
        self.assertNotIn("starting...", text)
        self.assertIn("20/20 steps", text)

    def test_error_notebook_with_and_without_allow_errors(self):
        path = os.path.join(ROOT, "tests", "kernel", "fixtures", "errors.ipynb")
        p, nb, _ = nbconvert(path, False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("deliberate failure", p.stderr)
        p, nb, _ = nbconvert(path, True)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        cells = nb["cells"]
        err = [o for o in cells[1]["outputs"] if o["output_type"] == "error"][0]
        self.assertEqual((err["ename"], err["evalue"]), ("Error", "deliberate failure"))
        self.assertIn("after the error: ran", json.dumps(cells[2]["outputs"]))


if __name__ == "__main__":
    unittest.main()
