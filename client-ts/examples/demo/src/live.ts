// The seed's hooks, rebuilt on Ripple: each keeps one list query patched
// from its table's changes (client-ts README, "Quick start").
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useRealtimeSubscription } from "@ripple-rt/client";
import { api, type ExtractionJob, type Project } from "./api";
import { countRefetch, markSubscribed } from "./stats";

/** newestFirst orders rows by created_at descending, then id descending. */
export function newestFirst(a: { created_at: string; id: number }, b: { created_at: string; id: number }): number {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || b.id - a.id;
}

export const projectsKey = ["projects"] as const;
export const jobsKey = (projectId: number) => ["projects", projectId, "extraction_jobs"] as const;

/** useProjectsLive keeps ["projects"] in step with the projects table, newest first. */
export function useProjectsLive(): void {
  useRealtimeSubscription<Project[], Project>({
    channel: "projects",
    queryKey: projectsKey,
    sort: newestFirst,
    maxLength: 200, // as many as GET /api/projects returns
    onSubscribed: () => markSubscribed("projects"),
  });
}

/**
 * useExtractionJobsLive keeps one project's job list in step. The filter runs
 * on the gateway, so jobs of other projects never enter this list.
 */
export function useExtractionJobsLive(projectId: number | undefined): void {
  useRealtimeSubscription<ExtractionJob[], ExtractionJob>({
    channel: "extraction_jobs",
    filter: { column: "project_id", op: "eq", value: projectId ?? 0 },
    queryKey: jobsKey(projectId ?? 0),
    sort: newestFirst,
    maxLength: 200, // as many as GET /api/projects/{id}/jobs returns
    enabled: projectId !== undefined,
    onSubscribed: () => markSubscribed("extraction_jobs"),
  });
}

/** useProjects is the projects list: fetched once, then patched live. */
export function useProjects() {
  const queryClient = useQueryClient();
  useProjectsLive();
  return useQuery({
    queryKey: projectsKey,
    queryFn: () => {
      if (queryClient.getQueryData(projectsKey) !== undefined) countRefetch();
      return api.listProjects();
    },
  });
}

/** useExtractionJobs is one project's jobs: fetched once, then patched live. */
export function useExtractionJobs(projectId: number | undefined) {
  const queryClient = useQueryClient();
  useExtractionJobsLive(projectId);
  return useQuery({
    queryKey: jobsKey(projectId ?? 0),
    queryFn: () => {
      if (queryClient.getQueryData(jobsKey(projectId!)) !== undefined) countRefetch();
      return api.listJobs(projectId!);
    },
    enabled: projectId !== undefined,
  });
}
