#!/usr/bin/env node
// A committed entry, so npm links the `outpost` command at install time, before dist/ is built
// (npm skips bins whose file does not exist yet).
import '../dist/index.js';
