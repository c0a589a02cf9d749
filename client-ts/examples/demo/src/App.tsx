import { useIsFetching, useMutation } from "@tanstack/react-query";
import { useRealtimeStatus } from "@ripple-rt/client";
import { useEffect, useState, useSyncExternalStore, type FormEvent } from "react";
import { api, type ExtractionJob, type Project } from "./api";
import { useExtractionJobs, useProjects } from "./live";
import { useStats } from "./stats";

// Mutations never invalidate a list: the change comes back over the
// WebSocket and is patched into the cache, like anyone else's change.

export function App() {
  const projects = useProjects();
  const [selectedId, setSelectedId] = useState<number>();
  const [error, setError] = useState<string>();
  const list = projects.data ?? [];
  const selected = list.find((p) => p.id === selectedId);

  // Select the newest project at first, and again when the selected one is deleted.
  useEffect(() => {
    if (list.length > 0 && selected === undefined) setSelectedId(list[0].id);
  }, [list, selected]);

  return (
    <div className="app">
      <header>
        <h1>
          Ripple <span>demo</span>
        </h1>
        <StatusBadge />
        <Counters />
        <SimulateSwitch onError={setError} />
      </header>
      {error && (
        <p className="error" role="alert" onClick={() => setError(undefined)}>
          {error}
        </p>
      )}
      <main>
        <ProjectsPanel projects={list} loading={projects.isPending} selectedId={selected?.id} onSelect={setSelectedId} onError={setError} />
        <JobsPanel project={selected} onError={setError} />
      </main>
      <footer>
        Open this page in two tabs, then change a row in <code>psql</code>:{" "}
        <code>UPDATE projects SET name = 'Hello' WHERE id = {selected?.id ?? 1};</code> Both tabs change at once, without a refetch.
      </footer>
    </div>
  );
}

const statusLabels = { open: "live", reconnecting: "reconnecting", connecting: "connecting", closed: "offline" } as const;

/** useOnline follows the browser's online/offline events. */
function useOnline(): boolean {
  return useSyncExternalStore(
    (onChange) => {
      window.addEventListener("online", onChange);
      window.addEventListener("offline", onChange);
      return () => {
        window.removeEventListener("online", onChange);
        window.removeEventListener("offline", onChange);
      };
    },
    () => navigator.onLine,
  );
}

function StatusBadge() {
  const status = useRealtimeStatus();
  const online = useOnline();
  const fetching = useIsFetching();
  const { subscribed } = useStats();
  // Not connected and without a network: the client keeps retrying, but the honest word is offline.
  const label = status !== "open" && !online ? "offline" : statusLabels[status];
  return (
    <span className={`badge badge-${label}`} data-testid="status" data-status={label} data-subscribed={subscribed} data-fetching={fetching}>
      <i /> {label}
    </span>
  );
}

function Counters() {
  const { patches, refetches } = useStats();
  return (
    <dl className="counters">
      <div title="setQueryData calls made from WebSocket changes">
        <dt>cache patches applied</dt>
        <dd data-testid="patches">{patches}</dd>
      </div>
      <div title="list queries fetched again while already cached (resync, reconnect)">
        <dt>list refetches</dt>
        <dd data-testid="refetches">{refetches}</dd>
      </div>
    </dl>
  );
}

function SimulateSwitch({ onError }: { onError(message: string): void }) {
  const [on, setOn] = useState(false);
  useEffect(() => {
    if (!on) return undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const step = async () => {
      try {
        await api.simulate();
      } catch (e) {
        onError(String((e as Error).message));
      }
      if (!stopped) timer = setTimeout(step, 300);
    };
    void step();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [on, onError]);
  return (
    <label className="switch">
      <input type="checkbox" data-testid="simulate" checked={on} onChange={(e) => setOn(e.target.checked)} />
      <span /> simulate activity
    </label>
  );
}

interface ProjectsPanelProps {
  projects: Project[];
  loading: boolean;
  selectedId: number | undefined;
  onSelect(id: number): void;
  onError(message: string): void;
}

function ProjectsPanel({ projects, loading, selectedId, onSelect, onError }: ProjectsPanelProps) {
  const [name, setName] = useState("");
  const create = useMutation({
    mutationFn: api.createProject,
    onSuccess: () => setName(""),
    onError: (e) => onError(e.message),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim()) create.mutate(name.trim());
  };
  return (
    <section className="panel">
      <h2>
        Projects <small>{projects.length}</small>
      </h2>
      <form onSubmit={submit} className="create">
        <input data-testid="new-project-name" placeholder="New project name" value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit" disabled={!name.trim() || create.isPending}>
          Create
        </button>
      </form>
      {loading && <p className="muted">Loading…</p>}
      <ul data-testid="projects">
        {projects.map((p) => (
          <ProjectItem key={p.id} project={p} selected={p.id === selectedId} onSelect={onSelect} onError={onError} />
        ))}
      </ul>
    </section>
  );
}

function ProjectItem({ project, selected, onSelect, onError }: { project: Project; selected: boolean; onSelect(id: number): void; onError(m: string): void }) {
  const [editing, setEditing] = useState<string>();
  const rename = useMutation({
    mutationFn: (name: string) => api.renameProject(project.id, name),
    onSuccess: () => setEditing(undefined),
    onError: (e) => onError(e.message),
  });
  const remove = useMutation({ mutationFn: () => api.deleteProject(project.id), onError: (e) => onError(e.message) });
  return (
    <li data-testid="project" data-id={project.id} className={selected ? "selected" : ""} onClick={() => onSelect(project.id)}>
      {editing === undefined ? (
        <>
          <span className="name" data-testid="project-name">
            {project.name}
          </span>
          <span className={`pill pill-${project.status}`}>{project.status}</span>
          <span className="actions" onClick={(e) => e.stopPropagation()}>
            <button onClick={() => setEditing(project.name)}>Rename</button>
            <button className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
              Delete
            </button>
          </span>
        </>
      ) : (
        <form
          className="rename"
          onClick={(e) => e.stopPropagation()}
          onSubmit={(e) => {
            e.preventDefault();
            if (editing.trim()) rename.mutate(editing.trim());
          }}
        >
          <input autoFocus aria-label="Project name" value={editing} onChange={(e) => setEditing(e.target.value)} />
          <button type="submit" disabled={rename.isPending}>
            Save
          </button>
          <button type="button" onClick={() => setEditing(undefined)}>
            Cancel
          </button>
        </form>
      )}
      <time className="muted">{new Date(project.created_at).toLocaleTimeString()}</time>
    </li>
  );
}

let documentCounter = 0;

function JobsPanel({ project, onError }: { project: Project | undefined; onError(message: string): void }) {
  const jobs = useExtractionJobs(project?.id);
  const create = useMutation({
    mutationFn: (projectId: number) => api.createJob(projectId, `scan-${String(++documentCounter).padStart(3, "0")}.pdf`),
    onError: (e) => onError(e.message),
  });
  if (!project) {
    return (
      <section className="panel">
        <h2>Extraction jobs</h2>
        <p className="muted">Create a project to see its jobs.</p>
      </section>
    );
  }
  const list = jobs.data ?? [];
  return (
    <section className="panel" data-testid="jobs-panel" data-project-id={project.id}>
      <h2>
        Extraction jobs <small>{project.name}</small>
      </h2>
      <button data-testid="add-job" onClick={() => create.mutate(project.id)} disabled={create.isPending}>
        Add job
      </button>
      {jobs.isPending && <p className="muted">Loading…</p>}
      <ul data-testid="jobs">
        {list.map((job) => (
          <JobItem key={job.id} job={job} onError={onError} />
        ))}
      </ul>
      {!jobs.isPending && list.length === 0 && <p className="muted">No jobs yet.</p>}
    </section>
  );
}

function JobItem({ job, onError }: { job: ExtractionJob; onError(message: string): void }) {
  const advance = useMutation({ mutationFn: () => api.advanceJob(job.id), onError: (e) => onError(e.message) });
  const done = job.status === "succeeded" || job.status === "failed";
  return (
    <li data-testid="job" data-id={job.id}>
      <span className="name">{job.document_name}</span>
      <span className={`pill pill-${job.status}`} data-testid="job-status">
        {job.status}
      </span>
      <progress max={100} value={job.progress} />
      <button onClick={() => advance.mutate()} disabled={done || advance.isPending}>
        Advance
      </button>
    </li>
  );
}
