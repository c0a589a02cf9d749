import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { RealtimeClient, RealtimeProvider } from "@ripple-rt/client";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { watch } from "./stats";
import "./styles.css";

// The lists stay fresh through the WebSocket, not through refetching.
const queryClient = new QueryClient({
  defaultOptions: { queries: { staleTime: Infinity, refetchOnWindowFocus: false, retry: 1 } },
});

// The gateway is the page's own origin (`ripple dev` serves both).
const url = new URL("/ws", window.location.href);
url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
const realtime = new RealtimeClient({ url: url.href, backoff: { initialMs: 250, maxMs: 4000 } });
watch(queryClient, realtime);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <RealtimeProvider client={realtime}>
        <App />
      </RealtimeProvider>
    </QueryClientProvider>
  </StrictMode>,
);
