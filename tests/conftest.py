pytest_plugins = ["support.jaeger", "support.browser"]
