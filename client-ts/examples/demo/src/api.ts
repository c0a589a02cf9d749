// The demo API served by `ripple dev` next to /ws (backend/demoapi). Rows are
// Postgres' row_to_json, the same shape the change notifications carry.

/** Project is a row of the projects table. */
export interface Project {
  id: number;
  organization_id: string;
  name: string;
  status: "active" | "paused" | "archived";
  description: string | null;
  created_at: string;
}

/** ExtractionJob is a row of the extraction_jobs table. */
export interface ExtractionJob {
  id: number;
  project_id: number;
  organization_id: string;
  document_name: string;
  status: "queued" | "running" | "succeeded" | "failed";
  progress: number;
  error_message: string | null;
  started_at: string | null;
  finished_at: string | null;
  created_at: string;
}

/** SimulatedChange is what one POST /api/simulate changed. */
export interface SimulatedChange {
  action: string;
  table: string;
  id: number;
}

/** ApiError is a failed API call; message is the API's {"error": …}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? undefined : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new ApiError(response.status, `${method} ${path}: ${response.status} ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const message = (data as { error?: string }).error ?? `${response.status}`;
    throw new ApiError(response.status, `${method} ${path}: ${message}`);
  }
  return data as T;
}

/** api holds one function per endpoint the page uses. */
export const api = {
  listProjects: () => request<Project[]>("GET", "/api/projects"),
  createProject: (name: string) => request<Project>("POST", "/api/projects", { name }),
  renameProject: (id: number, name: string) => request<Project>("PATCH", `/api/projects/${id}`, { name }),
  deleteProject: (id: number) => request<void>("DELETE", `/api/projects/${id}`),
  listJobs: (projectId: number) => request<ExtractionJob[]>("GET", `/api/projects/${projectId}/jobs`),
  createJob: (projectId: number, documentName: string) =>
    request<ExtractionJob>("POST", `/api/projects/${projectId}/jobs`, { document_name: documentName }),
  advanceJob: (id: number) => request<ExtractionJob>("POST", `/api/jobs/${id}/advance`),
  simulate: () => request<SimulatedChange>("POST", "/api/simulate"),
};
