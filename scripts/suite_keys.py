"""Every result key and training-run key of every shipped suite, one line per row, grid point and seed, so that a change
that must not alter them (a restructuring) can be checked: run before and after and compare the two outputs.
Usage: python scripts/suite_keys.py > keys.txt"""
from ltr_nb.experiments import suite_names, load_suite
from ltr_nb.runs import grid_rows, result_key, spec_key, train_spec

n = 0
for s in suite_names():
    for e0 in load_suite(s)['experiments']:
        for e, label in grid_rows(e0):
            for seed in e.seeds:
                print(s, label, seed, result_key(e, seed), spec_key(train_spec(e, seed)), sep='\t'); n += 1
print(n, 'rows', sep='\t')
