// SPDX-License-Identifier: LGPL-2.1-or-later
// The "aiortc" half of browser.test.mjs (see there), so each half has its own time limit.
process.env.POINTCAST_BROWSER_GROUP = 'aiortc';
await import('./browser.test.mjs');
