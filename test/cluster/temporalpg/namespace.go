package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

// retention is how long closed runs are kept.
const retention = 24 * time.Hour

// readyNamespace registers namespace (unless it exists), adds the Keyword
// search attributes of attrs it lacks, and waits until the frontend lists
// all of them. It retries while the server is still coming up.
func readyNamespace(ctx context.Context, address, namespace string, attrs []string) error {
	quiet := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	var c client.Client
	err := retry(ctx, func() (err error) {
		c, err = client.DialContext(ctx, client.Options{HostPort: address, Namespace: namespace, Logger: quiet})
		return err
	})
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	defer c.Close()
	err = retry(ctx, func() error {
		_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(retention),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("register namespace %s: %w", namespace, err)
	}
	err = retry(ctx, func() error {
		op := c.OperatorService()
		have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
		if err != nil {
			return err
		}
		missing := map[string]enumspb.IndexedValueType{}
		for _, name := range attrs {
			if _, ok := have.CustomAttributes[name]; !ok {
				missing[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
			}
		}
		if len(missing) == 0 {
			return nil
		}
		_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
		if err == nil {
			err = fmt.Errorf("added %v; waiting for the frontend to list them", slices.Sorted(maps.Keys(missing)))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("search attributes in %s: %w", namespace, err)
	}
	// The frontend maps search attributes from a cache of its own, which
	// lags the list above: a start that sets them all is what must work.
	var updates []temporal.SearchAttributeUpdate
	for _, name := range attrs {
		updates = append(updates, temporal.NewSearchAttributeKeyKeyword(name).ValueSet("probe"))
	}
	sa := temporal.NewSearchAttributes(updates...)
	err = retry(ctx, func() error {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "temporalpg-ready-probe", TaskQueue: "temporalpg-probe",
			TypedSearchAttributes: sa, WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING}, "probe")
		if err != nil {
			return err
		}
		return c.TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "temporalpg: search attributes are usable")
	})
	if err != nil {
		return fmt.Errorf("start a run with the search attributes in %s: %w", namespace, err)
	}
	return nil
}

// retry calls fn every 200 ms until it succeeds or ctx ends, and then
// returns fn's last error.
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
