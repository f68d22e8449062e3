"""The operator console: a web page where a security team watches cameras and handles alerts."""
