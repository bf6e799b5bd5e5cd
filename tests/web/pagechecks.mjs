// SPDX-License-Identifier: LGPL-2.1-or-later
// Checks that run inside the page (pass them to page.evaluate; playwright and puppeteer both
// send the function's source): what a user would see in the video and the canvases.

// Lit pixels in the scatter canvas (brighter than its background).
export const litScatterInPage = () => {
  const c = document.getElementById('scatter');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let k = 0; k < d.length; k += 4) if (d[k] + d[k + 1] + d[k + 2] > 60) n++;
  return n;
};

// Mean RGB of 20 x 12 patches of the next decoded frame at the given points ([x, y] in video
// pixels): the colour bars of videotestsrc as the page shows them.
export const patchColours = (points) => new Promise((resolve) => {
  const v = document.getElementById('video');
  v.requestVideoFrameCallback(() => {
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0);
    resolve(points.map(([x, y]) => {
      const { data } = ctx.getImageData(x - 10, y - 6, 20, 12);
      const sum = [0, 0, 0];
      for (let k = 0; k < data.length; k += 4) for (let ch = 0; ch < 3; ch++) sum[ch] += data[k + ch];
      return sum.map((t) => Math.round(t / (data.length / 4)));
    }));
  });
});

// The ball's centre found in the next decoded video frame (the pixels that differ most from the
// background, below the mark band if there is one), the frame number its mark carries, and the
// overlay the page drew last. Under load the frame drawn here can already be a later one than the
// page's own callback saw, so callers compare only when the two frame numbers agree.
export const findBallInFrame = () => import('/mark.js').then(({ readMark }) => new Promise((resolve) => {
  const v = document.getElementById('video');
  v.requestVideoFrameCallback(() => {
    const W = v.videoWidth;
    const H = v.videoHeight;
    const c = document.createElement('canvas');
    c.width = W;
    c.height = H;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0);
    const { data } = ctx.getImageData(0, 0, W, H);
    const top = window.pointcast.state.lastMark !== null ? 16 * Math.ceil(80 / Math.floor(W / 16)) + 2 : 0;
    const o0 = ((H - 1) * W) * 4;
    const bg = [data[o0], data[o0 + 1], data[o0 + 2]];
    let sx = 0;
    let sy = 0;
    let n = 0;
    for (let y = top; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const o = (y * W + x) * 4;
        const d = Math.abs(data[o] - bg[0]) + Math.abs(data[o + 1] - bg[1]) + Math.abs(data[o + 2] - bg[2]);
        if (d > 150) {
          sx += x;
          sy += y;
          n++;
        }
      }
    }
    const frame = window.pointcast.state.lastMark !== null ? readMark(data, W) : null;
    resolve({ x: n ? sx / n : -1, y: n ? sy / n : -1, n, frame, overlay: window.pointcast.state.lastOverlay });
  });
}));
