"""What runs on the user side: browser pages (templates, static) and the headless aiortc client."""
