// The bench's canvas text pages (bench/page/text-pages.js) rendered in Chromium and brought to
// Node, for the quantizer's calibration and scripts/ppocr-sensitivity.mjs.
import { readFile } from 'node:fs/promises';
import { ppocrInput, TEXT_PAGE_SIZE } from '../page/text-pages.js';

const ORIGIN = 'http://text-pages.outpost.invalid';
const source = new URL('../page/text-pages.js', import.meta.url);

/**
 * PP-OCR det inputs of the text pages with `seeds` (`style` as textPageRgba takes it), drawn by
 * `browser` (Playwright) with canvas fillText in a blank page that loads only
 * bench/page/text-pages.js.
 */
export async function renderTextPages(browser, seeds, style = 'clean') {
  const page = await browser.newPage();
  try {
    const js = await readFile(source, 'utf8');
    await page.route(`${ORIGIN}/**`, (route) =>
      route.request().url().endsWith('/text-pages.js')
        ? route.fulfill({ contentType: 'text/javascript', body: js })
        : route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>text pages</title>' }),
    );
    await page.goto(`${ORIGIN}/`);
    const pages = await page.evaluate(
      async ([list, pageStyle]) => {
        const { textPageRgba } = await import('/text-pages.js');
        // base64 keeps the transfer small (a JSON array of 409,600 numbers per page is not).
        return list.map((seed) => {
          const rgba = textPageRgba(seed, pageStyle);
          let s = '';
          for (let i = 0; i < rgba.length; i += 0x8000) s += String.fromCharCode(...rgba.subarray(i, i + 0x8000));
          return btoa(s);
        });
      },
      [seeds, style],
    );
    return pages.map((b64) => ppocrInput(new Uint8Array(Buffer.from(b64, 'base64')), TEXT_PAGE_SIZE));
  } finally {
    await page.close();
  }
}
