// The GraphiQL page's own script (api/ide.py), a file rather than an inline script so the page's
// Content-Security-Policy can refuse every inline script.
"use strict";

(function () {
  const root = document.getElementById("graphiql");
  if (typeof GraphiQL === "undefined" || typeof ReactDOM === "undefined") {
    root.className = "switchboard-missing";
    root.textContent =
      "GraphiQL's scripts did not load. Without internet, install them once with `make ide` " +
      "(needs Node.js and npm); the page then serves them itself.";
    return;
  }

  const EXAMPLE = [
    "# Switchboard's GraphQL API. Sign in with the login mutation, then put the token in the",
    "# Headers tab below as {\"Authorization\": \"Bearer <accessToken>\"}: queries, mutations and",
    "# subscriptions (as the socket's connection_init payload) all send it.",
    "",
    "query Me {",
    "  me {",
    "    id",
    "    email",
    "    displayName",
    "  }",
    "}",
    "",
  ].join("\n");

  const page = new URL(window.location.href);
  const endpoint = page.origin + page.pathname;
  const socket = new URL(endpoint);
  socket.protocol = page.protocol === "https:" ? "wss:" : "ws:";

  // The toolkit's fetcher sends the Headers tab with each HTTP request and, for a subscription,
  // as the connectionParams of the graphql-ws client it opens (the connection_init payload).
  const fetcher = GraphiQL.createFetcher({ url: endpoint, subscriptionUrl: socket.href });

  // The editors' contents travel in the address (q, variables) so a link shares a query; never
  // the headers, which hold credentials. Not `query`: a GET with ?query= runs the operation.
  function remember(name, value) {
    const address = new URL(window.location.href);
    if (value) {
      address.searchParams.set(name, value);
    } else {
      address.searchParams.delete(name);
    }
    window.history.replaceState(null, "", address);
  }

  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  const props = {
    fetcher: fetcher,
    plugins: [explorer],
    defaultQuery: EXAMPLE,
    query: page.searchParams.get("q") || undefined,
    variables: page.searchParams.get("variables") || undefined,
    onEditQuery: function (value) {
      remember("q", value);
    },
    onEditVariables: function (value) {
      remember("variables", value);
    },
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
    defaultEditorToolsVisibility: true,
    inputValueDeprecation: true,
  };
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
