"""Development tools of this repository (never shipped with the engine): e2e containers,
lint runners, CI tool installers."""
