// src/util/paths.ts: `~` in paths that users type into settings.

import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { expandHome } from '../../src/util/paths';

test('expandHome: only a leading ~ segment is the home folder', () => {
  assert.equal(expandHome('~'), os.homedir());
  assert.equal(expandHome('~/models/x'), path.join(os.homedir(), 'models/x'));
  assert.equal(expandHome('~user/x'), '~user/x');
  assert.equal(expandHome('/abs/~/x'), '/abs/~/x');
  assert.equal(expandHome('rel/x'), 'rel/x');
});
