"""The loopback jobs behind ``launch.load_test`` and ``launch.fault_test``: a real server process
and simulated cameras on one host. ``cameras`` holds what both set up (camera names, a throwaway
PKI, looped source clips); each job's ``run(settings)`` returns the JSON object its launcher
prints. Measured numbers live in BUILD_NOTES.md."""
