// Runs one operation with graphql-sse's client and prints each result as a line of JSON, then "done"
// once it completes or has printed <count> results (a subscription runs until then).
// Usage: node client.mjs <url> <single|distinct> <token or ""> <count> <query> [variables as JSON]
import { createClient } from 'graphql-sse';

const [url, mode, token, count, query, variables] = process.argv.slice(2);
const client = createClient({
  url,
  singleConnection: mode === 'single',
  headers: token ? { Authorization: `Bearer ${token}` } : {},
  retryAttempts: 0,
});
try {
  let seen = 0;
  for await (const result of client.iterate({ query, variables: variables ? JSON.parse(variables) : {} })) {
    console.log(JSON.stringify(result));
    if (++seen >= Number(count)) break;
  }
  console.log('done');
} catch (error) {
  console.log(JSON.stringify({ clientError: String(error?.message ?? error) }));
} finally {
  client.dispose();
}
