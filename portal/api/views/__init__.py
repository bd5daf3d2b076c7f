"""The REST API's views, one module per area. Each is thin: scope to the caller (one access
helper), validate input, call the same service or selector the web page calls, answer."""
