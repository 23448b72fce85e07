// The bench's options: every scenario runs by default, the history and guard flags parse, and a history scale that
// would fill the disk is refused before anything starts.

import t from 'tap';
import { parseOptions, scenarioNames } from '../../bench/options.js';

t.test('defaults: every scenario, the history scenario at 100,000 keys × 200 versions', async (t) => {
  const options = parseOptions([]);
  t.same([...options.scenarios], [...scenarioNames]);
  t.ok(['sqlite', 'memory-guard', 'history'].every((name) => options.scenarios.has(name as (typeof scenarioNames)[number])));
  t.same([options.historyKeys, options.historyVersions, options.guardLimitMb], [100_000, 200, 256]);
});

t.test('the new flags and scenario names parse; bad ones are usage errors', async (t) => {
  const options = parseOptions(['--only', 'sqlite,history', '--history-keys', '500', '--history-versions', '7', '--guard-limit-mb', '64']);
  t.same([...options.scenarios], ['sqlite', 'history']);
  t.same([options.historyKeys, options.historyVersions, options.guardLimitMb], [500, 7, 64]);
  t.throws(() => parseOptions(['--history-keys', '0']), /between 1 and/);
  t.throws(() => parseOptions(['--history-keys', '1000000', '--history-versions', '1000']), /at most/);
  t.throws(() => parseOptions(['--only', 'sqlite,nope']), /unknown scenario/);
});
