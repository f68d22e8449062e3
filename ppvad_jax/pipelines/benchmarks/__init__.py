"""The timing jobs behind ``launch.benchmark_*``: each ``run(...)`` returns the JSON object its
launcher prints. ``timing`` holds the clocks they share; measured numbers live in BUILD_NOTES.md."""
