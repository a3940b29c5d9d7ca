"""Runs every tests/kernel/test_*.py (unittest) and prints one closing line, `N passed, M failed,
K skipped`; exits non-zero on any failure or error. Skips must carry a reason (shown here)."""
import os
import sys
import time
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


class Result(unittest.TextTestResult):
    def startTest(self, test):
        self._t = time.time()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        sys.stderr.write(f"    ({time.time() - self._t:.1f}s)\n")


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else "test_*.py"
    suite = unittest.defaultTestLoader.discover(here, pattern=pattern, top_level_dir=here)
    t = time.time()
    res = unittest.TextTestRunner(verbosity=2, resultclass=Result).run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    print(f"python kernel suites took {time.time() - t:.1f}s")
    for test, reason in res.skipped:
        print(f"skipped {test.id()}: {reason or '(no reason given)'}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
