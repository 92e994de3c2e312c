import { expect, test, type Page } from '@playwright/test';
import { demoPort } from '../playwright.config.js';

// The demo of the README's first command: draw a digit, see the prediction, backend and latency.

const demo = `http://127.0.0.1:${demoPort}/`;

async function stroke(page: Page, points: [number, number][]): Promise<void> {
  const box = (await page.locator('#pad').boundingBox())!;
  const [first, ...rest] = points;
  await page.mouse.move(box.x + first![0], box.y + first![1]);
  await page.mouse.down();
  for (const [x, y] of rest) await page.mouse.move(box.x + x, box.y + y, { steps: 4 });
  await page.mouse.up();
}

test('demo: drawing a 1 and a 0 gives 1 and 0, with the backend and latency shown', async ({ page }) => {
  await page.goto(demo);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await expect(page.locator('#backend')).toHaveText(/^(webgpu|wasm)/);

  await stroke(page, [
    [140, 40],
    [140, 240],
  ]);
  await expect(page.locator('#prediction')).toHaveText('1');
  await expect(page.locator('#latency')).toHaveText(/^\d+\.\d\d ms$/);
  await expect(page.locator('#bars li')).toHaveCount(10);

  await page.click('#clear');
  await expect(page.locator('#prediction')).toHaveText('?');
  const circle: [number, number][] = [];
  for (let a = 0; a <= 2 * Math.PI + 0.3; a += 0.25) circle.push([140 + 60 * Math.sin(a), 140 - 95 * Math.cos(a)]);
  await stroke(page, circle);
  await expect(page.locator('#prediction')).toHaveText('0');
  await page.screenshot({ path: 'test-results/demo.png' });
});
