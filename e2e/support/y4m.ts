// A tiny YUV4MPEG2 writer for Chromium's fake camera (`--use-file-for-fake-video-capture`):
// light "paper" with lines of dark block letters, drifting a little from frame to frame, so a
// text detector finds text in every frame and no two frames are the same.

/** 5×7 block letters, one string per row, '#' inked. */
const GLYPHS: Record<string, string[]> = {
  O: ['.###.', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  U: ['#...#', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  T: ['#####', '..#..', '..#..', '..#..', '..#..', '..#..', '..#..'],
  P: ['####.', '#...#', '#...#', '####.', '#....', '#....', '#....'],
  S: ['.####', '#....', '#....', '.###.', '....#', '....#', '####.'],
  E: ['#####', '#....', '#....', '####.', '#....', '#....', '#####'],
  D: ['####.', '#...#', '#...#', '#...#', '#...#', '#...#', '####.'],
  G: ['.####', '#....', '#....', '#.###', '#...#', '#...#', '.###.'],
  K: ['#...#', '#..#.', '#.#..', '##...', '#.#..', '#..#.', '#...#'],
  N: ['#...#', '##..#', '##..#', '#.#.#', '#..##', '#..##', '#...#'],
  I: ['#####', '..#..', '..#..', '..#..', '..#..', '..#..', '#####'],
  A: ['.###.', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  '0': ['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'],
  '1': ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  '2': ['.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'],
  '4': ['...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'],
  '6': ['.###.', '#....', '#....', '####.', '#...#', '#...#', '.###.'],
  ' ': ['.....', '.....', '.....', '.....', '.....', '.....', '.....'],
};

/** The lines of text on the clip, with their top-left corner and letter scale. */
const LINES = [
  { text: 'OUTPOST 2026', x: 40, y: 60, scale: 5 },
  { text: 'EDGE KIOSK 14', x: 40, y: 170, scale: 4 },
  { text: 'STATION 6', x: 40, y: 280, scale: 4 },
  { text: 'DATA 0412', x: 300, y: 380, scale: 3 },
];

/** One frame's luma plane: paper at 235, ink at 25, the text shifted right by `dx` pixels. */
function luma(width: number, height: number, dx: number): Uint8Array {
  const y = new Uint8Array(width * height).fill(235);
  for (const line of LINES) {
    let cx = line.x + dx;
    for (const ch of line.text) {
      const glyph = GLYPHS[ch] ?? GLYPHS[' ']!;
      glyph.forEach((row, gy) => {
        for (let gx = 0; gx < 5; gx++) {
          if (row[gx] !== '#') continue;
          for (let py = 0; py < line.scale; py++) {
            for (let px = 0; px < line.scale; px++) {
              const X = cx + gx * line.scale + px;
              const Y = line.y + gy * line.scale + py;
              if (X >= 0 && X < width && Y >= 0 && Y < height) y[Y * width + X] = 25;
            }
          }
        }
      });
      cx += 6 * line.scale;
    }
  }
  return y;
}

/**
 * A Y4M clip (4:2:0, neutral chroma) of `frames` frames at `fps`. Chromium plays it in a loop
 * as the camera.
 */
export function textClip(width = 640, height = 480, fps = 30, frames = 30): Uint8Array {
  const header = new TextEncoder().encode(`YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`);
  const marker = new TextEncoder().encode('FRAME\n');
  const chroma = (width / 2) * (height / 2);
  const frameBytes = marker.length + width * height + 2 * chroma;
  const out = new Uint8Array(header.length + frames * frameBytes);
  out.set(header, 0);
  let at = header.length;
  for (let f = 0; f < frames; f++) {
    out.set(marker, at);
    at += marker.length;
    // Drift right and back over the loop, so the clip joins up without a jump.
    out.set(luma(width, height, Math.round(8 * Math.sin((2 * Math.PI * f) / frames))), at);
    at += width * height;
    out.fill(128, at, at + 2 * chroma);
    at += 2 * chroma;
  }
  return out;
}
