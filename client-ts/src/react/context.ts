import { createContext, createElement, useContext, type ReactNode } from "react";
import type { RealtimeClient } from "../core/client.js";

const RealtimeContext = createContext<RealtimeClient | null>(null);

/** RealtimeProviderProps hold the client to share and the tree that uses it. */
export interface RealtimeProviderProps {
  /** client is the one {@link RealtimeClient} of the app; create it once, outside render. */
  client: RealtimeClient;
  /** children are the components whose hooks use the client. */
  children?: ReactNode;
}

/** RealtimeProvider makes `client` available to the hooks below it. */
export function RealtimeProvider({ client, children }: RealtimeProviderProps): ReactNode {
  return createElement(RealtimeContext.Provider, { value: client }, children);
}

/** useRealtimeClient returns the provider's client, or throws when there is no provider. */
export function useRealtimeClient(): RealtimeClient {
  const client = useContext(RealtimeContext);
  if (!client) throw new Error("useRealtimeClient: no RealtimeProvider above this component");
  return client;
}
