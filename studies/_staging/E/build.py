import csv, os
E = os.path.dirname(os.path.abspath(__file__))
MAIN = os.path.join(E, '..', '..')
def header(name):
    with open(os.path.join(MAIN, name), encoding='utf-8') as f:
        return next(csv.reader(f))

RG = "https://www.researchgate.net/publication/5847968_Beneficial_effects_of_vitamins_D_and_K_on_the_elastic_properties_of_the_vessel_wall_in_postmenopausal_women_A_follow-up_study"
PMC = "https://pmc.ncbi.nlm.nih.gov/articles/PMC11279569/table/nutrients-16-02356-t002/?term=%22Nutrients%22%5Bjour%5D"
Q_PRIMARY = ("The results showed that the elastic properties of the common carotid artery in the MDK-group remained unchanged "
             "over the three-year period, but decreased in the MD- and placebo-group. Comparing the MDK- and placebo-group, there "
             "were significant differences in decrease of DC (8.8%; p<0.05), CC (8.6%; p<0.05), and in increase of PP (6.3%; p<0.05) "
             "and E (13.2%, p<0.01). There were no significant differences between the MD-group and placebo.")
Q_REVIEW = ("After 3 years of supplementation and after adjustment for baseline heart rate, mean arterial pressure, age, weight and "
            "smoking: ↓ DC (8.8%, 95% CI: 1.9 to 21.4; p < 0.05) and CC (8.6%, 95% CI: 1.8 to 20.3; p < 0.05) in MDK group vs. "
            "placebo; ↑ Pulse pressure (6.3%, 95% CI: 0.7 to 17.1; p < 0.05) and E (13.2%, 95% CI: 5.3 to 35.8; p < 0.01) in MDK group vs. placebo")
QUOTE = Q_PRIMARY + " … " + Q_REVIEW
SRC = RG + " ; " + PMC
COMMON_NOTE = ("Study row has include = no (see staging E corrections.md for the proposed change); "
               "Braam 2004 (doi:10.1160/TH03-07-0423), 3-arm trial; this contrast is MDK (minerals + vitamin D + vitamin K1) vs placebo, "
               "so vitamin D + minerals are confounded with K1 (the MDK vs MD contrast is not reported). Magnitude from the primary abstract "
               "(ResearchGate copy); 95% CI and 'after adjustment' only in the review table PMC11279569 Table 2 -> secondary = yes. "
               "The CI is asymmetric around the estimate (probably not a simple mean difference); metak's CI->SE step assumes symmetry, so its derived 95% CI crosses 0 although the reported CI excludes 0 and p<0.05 (the SE is probably overstated, i.e. conservative). "
               "n per arm not reported (108 analysed over 3 arms). SIGN: the primary abstract says elastic properties 'remained unchanged' "
               "in MDK but 'decreased' in placebo; the review table's arrows ('↓ DC ... in MDK group vs. placebo', '↑ ... E ... in MDK group') "
               "read the other way round; the primary abstract is followed here. Units: % (relative change difference).")

contrasts = [
    dict(study_id='Braam2004', outcome='carotid_distensibility_pct', arm_label='MDK (K1 + minerals + vitamin D)', measure='MD',
         estimate='8.8', order='t-c', ci_low='1.9', ci_high='21.4', adjusted='yes', source=SRC, quote=QUOTE, secondary='yes',
         notes="Common carotid distensibility coefficient (DC), difference in 3-year % change, MDK minus placebo (positive = less loss of distensibility with MDK = favourable). " + COMMON_NOTE),
    dict(study_id='Braam2004', outcome='carotid_compliance_pct', arm_label='MDK (K1 + minerals + vitamin D)', measure='MD',
         estimate='8.6', order='t-c', ci_low='1.8', ci_high='20.3', adjusted='yes', source=SRC, quote=QUOTE, secondary='yes',
         notes="Common carotid compliance coefficient (CC), difference in 3-year % change, MDK minus placebo (positive = favourable). " + COMMON_NOTE),
    dict(study_id='Braam2004', outcome='carotid_youngs_modulus_pct', arm_label='MDK (K1 + minerals + vitamin D)', measure='MD',
         estimate='13.2', order='c-t', ci_low='5.3', ci_high='35.8', adjusted='yes', source=SRC, quote=QUOTE, secondary='yes',
         notes="Young's elastic modulus (E) of the common carotid artery, difference in 3-year % change recorded as placebo minus MDK (order c-t: E rose more with placebo; higher E = stiffer). " + COMMON_NOTE),
]
outcomes = [
    dict(outcome='carotid_distensibility_pct', family='stiffness', description='common carotid artery distensibility coefficient (DC), % change over follow-up (echotracking)', unit='%', direction='higher_is_better', measure='MD'),
    dict(outcome='carotid_compliance_pct', family='stiffness', description='common carotid artery compliance coefficient (CC), % change over follow-up (echotracking)', unit='%', direction='higher_is_better', measure='MD'),
    dict(outcome='carotid_youngs_modulus_pct', family='stiffness', description="common carotid artery Young's elastic modulus (E), % change over follow-up", unit='%', direction='lower_is_better', measure='MD'),
]

def write(name, hdr, rows):
    with open(os.path.join(E, name), 'w', encoding='utf-8', newline='') as f:
        w = csv.DictWriter(f, fieldnames=hdr, lineterminator='\n')
        w.writeheader()
        for r in rows:
            assert set(r) <= set(hdr), set(r) - set(hdr)
            w.writerow({k: r.get(k, '') for k in hdr})

write('contrasts.csv', header('contrasts.csv'), contrasts)
write('arms.csv', header('arms.csv'), [])
write('outcomes.csv', header('outcomes.csv'), outcomes)
print('ok')
