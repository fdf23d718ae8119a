// Package e2e holds end-to-end tests of fief-go in a real browser: headless
// Chromium, driven through the DevTools protocol with chromedp, logs in on
// fieftest's HTML login page through fief.LoginFlow. It has no code of its
// own; the browser driver is imported by its tests only, so it never reaches
// the fief package's imports.
//
// The tests find the browser at $CHROMIUM_PATH, /usr/bin/chromium or a
// chromium on $PATH (Debian: apt-get install chromium). Without one they
// skip, unless FIEF_REQUIRE_CHROMIUM is set (as in CI), in which case they
// fail.
package e2e
