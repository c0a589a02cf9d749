package jshost

import (
	"container/heap"
	"time"
)

// timerQueue holds the armed JavaScript timers in firing order: by deadline,
// then by the order they were armed. It is owned by the loop goroutine.
type timerQueue struct {
	heap  timerHeap
	armed map[int64]*timer // by JS timer id
	seq   uint64
}

type timer struct {
	id  int64
	at  time.Time
	seq uint64
	idx int
}

// arm (re)schedules timer id to fire after d.
func (q *timerQueue) arm(id int64, d time.Duration) {
	if q.armed == nil {
		q.armed = map[int64]*timer{}
	}
	q.cancel(id)
	q.seq++
	t := &timer{id: id, at: time.Now().Add(d), seq: q.seq}
	q.armed[id] = t
	heap.Push(&q.heap, t)
}

// cancel forgets timer id; an unknown id is ignored.
func (q *timerQueue) cancel(id int64) {
	t, ok := q.armed[id]
	if !ok {
		return
	}
	delete(q.armed, id)
	heap.Remove(&q.heap, t.idx)
}

// next reports the earliest deadline, if any timer is armed.
func (q *timerQueue) next() (time.Time, bool) {
	if len(q.heap) == 0 {
		return time.Time{}, false
	}
	return q.heap[0].at, true
}

// due removes and returns, in firing order, the ids of the timers whose
// deadline is not after now.
func (q *timerQueue) due(now time.Time) []int64 {
	var ids []int64
	for len(q.heap) > 0 && !q.heap[0].at.After(now) {
		t := heap.Pop(&q.heap).(*timer)
		delete(q.armed, t.id)
		ids = append(ids, t.id)
	}
	return ids
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
