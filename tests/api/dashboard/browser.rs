//! Browser journeys in headless Chromium (added below).
