// Starts dynalite's own command line (node_modules/dynalite/cli.js, same
// flags) with one guard: dynalite throws from a request's 'error' event
// (index.js: req.on('error', function (err) { throw err })), so a client
// that aborts a request mid-body, as the AWS SDK does when a Go context
// is cancelled, kills the whole stand-in and every test after it.
// DynamoDB itself just drops such a request; so does this.
process.on('uncaughtException', function (err) {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error('dynalite-server: a client aborted a request (' + err.message + '); ignored');
    return;
  }
  console.error(err);
  process.exit(1);
});
require('./node_modules/dynalite/cli.js');
